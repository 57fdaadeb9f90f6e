"""target-dynamics: a Singer target that loads streams into Microsoft Dataverse tables."""

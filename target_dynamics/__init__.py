"""target-dynamics: a Singer target that loads streams into Microsoft Dataverse tables."""

__version__ = "0.1.0"

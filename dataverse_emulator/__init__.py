"""A local emulator of the Microsoft Dataverse Web API (v9.2) and the Entra ID token endpoint.

It imports nothing from ``target_dynamics``: the two never share a codec, so each catches the
other's mistakes.
"""

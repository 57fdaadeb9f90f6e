"""National clouds: each cloud's Entra login host and Dataverse domain (§1.4), pure.

The one place that maps a cloud to its login host. The token scope is the same in every cloud
(``{dynamics_url}/.default``, §1.1), so only the login host differs. Microsoft Learn: "National
clouds" (https://learn.microsoft.com/entra/identity-platform/authentication-national-cloud) and
"Power Apps US Government"
(https://learn.microsoft.com/power-platform/admin/powerapps-us-government).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

CLOUD_AUTHORITY_HOSTS: dict[str, str] = {
    "public": "https://login.microsoftonline.com",
    "gcc": "https://login.microsoftonline.com",
    "gcc_high": "https://login.microsoftonline.us",
    "dod": "https://login.microsoftonline.us",
    "china": "https://login.partner.microsoftonline.cn",
}
"""Entra authority host per cloud (§1.4)."""

CLOUDS = tuple(CLOUD_AUTHORITY_HOSTS)
"""The values ``cloud`` accepts."""

_DATAVERSE_DOMAINS = (
    (re.compile(r"\.crm9\.dynamics\.com$"), "gcc"),
    (re.compile(r"\.crm\d*\.dynamics\.com$"), "public"),
    (re.compile(r"\.crm\.microsoftdynamics\.us$"), "gcc_high"),
    (re.compile(r"\.crm\.appsplatform\.us$"), "dod"),
    (re.compile(r"\.crm\.dynamics\.cn$"), "china"),
)
"""Dataverse host suffix -> cloud, first match wins (§1.4; ``org.api.crm…`` hosts match too)."""


def cloud_of_url(dynamics_url: str) -> str | None:
    """The cloud whose Dataverse domain holds ``dynamics_url``'s host.

    Returns:
        A key of :data:`CLOUD_AUTHORITY_HOSTS`, or None for any other host (the emulator, a
        proxy, an on-premises server).
    """
    host = (urlsplit(dynamics_url).hostname or "").lower()
    return next((cloud for domain, cloud in _DATAVERSE_DOMAINS if domain.search(host)), None)


def is_microsoft_login_host(url: str) -> bool:
    """Whether ``url`` is one of the clouds' Entra login hosts."""
    hosts = {urlsplit(h).hostname for h in CLOUD_AUTHORITY_HOSTS.values()}
    return (urlsplit(url).hostname or "").lower() in hosts


def choose_cloud(
    cloud: str | None, authority_host: str | None, dynamics_url: str
) -> tuple[str, str | None]:
    """The cloud to use, and a warning when the login host contradicts ``dynamics_url``.

    An explicit ``cloud`` is honoured; without one the cloud is inferred from the URL's domain,
    else ``public``. ``authority_host`` (which overrides the cloud's login host) only contradicts
    the URL when it is another Microsoft login host: the emulator or a proxy never does.

    Returns:
        ``(cloud, warning)``; the warning is None when nothing contradicts.
    """
    inferred = cloud_of_url(dynamics_url)
    chosen = cloud or inferred or "public"
    login_host = (authority_host or CLOUD_AUTHORITY_HOSTS[chosen]).rstrip("/")
    expected = CLOUD_AUTHORITY_HOSTS[inferred] if inferred else None
    if expected is None or not is_microsoft_login_host(login_host):
        return chosen, None
    if urlsplit(login_host).hostname == urlsplit(expected).hostname:
        return chosen, None
    setting = "authority_host" if authority_host else "cloud"
    shown = setting if authority_host else f"cloud '{chosen}'"
    return chosen, (
        f"{shown} asks {login_host} for tokens, but dynamics_url {dynamics_url} is a "
        f"{inferred} environment, whose login host is {expected}; using {login_host} as "
        f"configured. If token requests fail, remove {setting} (the cloud is then inferred "
        "from dynamics_url)."
    )

"""The conformance suite's independent client: requests + msal, multipart parsing, error checks.

The client is plain ``requests`` trusting the emulator's CA, with a token from real ``msal``
(reference §1.6 recipe). Only the server starter (``dataverse_emulator.testing``) and the
documented ``target-config.json`` values are taken from the emulator; every wire detail
(URLs, headers, multipart) is built and parsed here, from docs/dataverse.md.
"""

from __future__ import annotations

import email.parser
import email.policy
import importlib.resources
import json
import re
import typing as t
import uuid
from dataclasses import dataclass

import msal
import requests

if t.TYPE_CHECKING:
    from dataverse_emulator.server import EmulatorServer

EXAMPLE_ENTITIES = importlib.resources.files("dataverse_emulator") / (
    "data/examples/custom-entities.json"
)
"""The example ``--entities`` file of docs/emulator-entities.md (custom tables, bulk off)."""

ODATA_HEADERS = {
    "Accept": "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
    "If-None-Match": "null",
}
"""§2.2: the headers every Dataverse call carries."""

JSON_CONTENT_TYPE = "application/json; odata.metadata=minimal"
"""§2.3: ``Content-Type`` of JSON bodies."""

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ETAG = re.compile(r'^W/"\d+"$')


def trusting_session(ca_path: str) -> requests.Session:
    """A session that trusts only the emulator CA, immune to ``REQUESTS_CA_BUNDLE`` (§1.6)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_path
    return session


def msal_token(config: dict[str, t.Any], *, client_secret: str | None = None) -> dict[str, t.Any]:
    """Run MSAL's client-credentials flow against the emulated authority (§1.6 recipe)."""
    app = msal.ConfidentialClientApplication(
        config["client_id"],
        client_credential=client_secret or config["client_secret"],
        authority=f"{config['authority_host']}/{config['tenant_id']}",
        instance_discovery=False,
        http_client=trusting_session(config["ca_bundle"]),
    )
    return app.acquire_token_for_client(scopes=[f"{config['dynamics_url']}/.default"])


@dataclass(frozen=True)
class Part:
    """One operation's answer inside a ``$batch`` response (§5.3)."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None
    changeset: int | None
    """Index of the change set (among the top-level parts) this part belongs to, if any."""

    def json(self) -> t.Any:
        """The part body as JSON."""
        return json.loads(self.body)


class Dataverse:
    """A thin Web API client: paths are relative to ``/api/data/v9.2``."""

    def __init__(self, server: EmulatorServer, token: str) -> None:
        config = server.target_config
        self.server = server
        self.base_url = config["dynamics_url"]
        self.api_url = f"{self.base_url}/api/data/v9.2"
        self.token = token
        self.session = trusting_session(config["ca_bundle"])
        self.session.headers.update(ODATA_HEADERS)
        self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs: t.Any) -> requests.Response:
        """Send ``method`` to ``{api_url}/{path}`` (an absolute URL is sent as is)."""
        url = path if path.startswith("https://") else f"{self.api_url}/{path}"
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, url, **kwargs)

    def get(self, path: str, **kwargs: t.Any) -> requests.Response:
        """GET."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: t.Any) -> requests.Response:
        """POST."""
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: t.Any) -> requests.Response:
        """PATCH."""
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: t.Any) -> requests.Response:
        """DELETE."""
        return self.request("DELETE", path, **kwargs)

    def create(self, entity_set: str, body: dict[str, t.Any]) -> str:
        """Create a row (§4.1) and return its id parsed from ``OData-EntityId``."""
        response = self.post(entity_set, json=body)
        assert response.status_code == 204, response.text
        match = re.fullmatch(
            rf"{re.escape(self.api_url)}/{entity_set}\(([0-9a-f-]{{36}})\)",
            response.headers["OData-EntityId"],
        )
        assert match, response.headers["OData-EntityId"]
        return match.group(1)

    def rows(self, entity_set: str, query: str = "") -> list[dict[str, t.Any]]:
        """All rows of a query (no paging expected for small sets)."""
        response = self.get(f"{entity_set}?{query}" if query else entity_set)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "@odata.nextLink" not in body
        return body["value"]

    def batch(
        self, body: str | bytes, boundary: str, *, prefer: str | None = None, quoted: bool = True
    ) -> requests.Response:
        """POST a multipart ``$batch`` body (§5.1)."""
        value = f'"{boundary}"' if quoted else boundary
        headers = {"Content-Type": f"multipart/mixed; boundary={value}"}
        if prefer:
            headers["Prefer"] = prefer
        data = body.encode() if isinstance(body, str) else body
        return self.post("$batch", data=data, headers=headers)

    @staticmethod
    def parts(response: requests.Response) -> list[Part]:
        """Split a multipart ``$batch`` response into its operations, change sets flattened."""
        content_type = response.headers["Content-Type"]
        assert content_type.startswith("multipart/mixed"), content_type
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + response.content
        )
        assert message.is_multipart(), response.text
        parts: list[Part] = []
        for index, top in enumerate(message.iter_parts()):
            if top.is_multipart():
                parts += [_http_part(inner, index) for inner in top.iter_parts()]
            else:
                parts.append(_http_part(top, None))
        return parts

    @staticmethod
    def assert_error(
        response: requests.Response | Part,
        status: int,
        code: str | None = None,
        message: str | None = None,
    ) -> dict[str, str]:
        """Check a §4.8 error: status, §2.3 headers, ``{"error":{"code","message"}}``.

        Returns:
            The ``error`` object, for further checks.
        """
        if isinstance(response, requests.Response):
            actual, text = response.status_code, response.text
        else:
            actual, text = response.status, response.body.decode()
        assert actual == status, text
        headers = response.headers
        assert headers.get("Content-Type") == JSON_CONTENT_TYPE, headers  # §4.4, §5.4, §7.8
        assert headers.get("OData-Version") == "4.0", headers
        body = response.json()
        assert set(body) == {"error"}, body
        error = body["error"]
        assert isinstance(error.get("code"), str), body
        assert isinstance(error.get("message"), str), body
        assert error["message"], body
        assert "innererror" not in error, body  # §4.8: removed in 2020
        if code is not None:
            assert error["code"] == code, body
        if message is not None:
            assert error["message"] == message, body
        return error


def _http_part(part: t.Any, changeset: int | None) -> Part:
    """Parse one ``application/http`` part: status line, headers, body."""
    assert part.get_content_type() == "application/http", part
    assert part["Content-Transfer-Encoding"] == "binary", part
    payload: bytes = part.get_payload(decode=True)
    head, _, body = payload.replace(b"\r\n", b"\n").partition(b"\n\n")
    status_line, *header_lines = head.decode().split("\n")
    version, status, reason = status_line.split(" ", 2)
    assert version == "HTTP/1.1", status_line
    headers = requests.structures.CaseInsensitiveDict()
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    return Part(
        status=int(status),
        reason=reason,
        headers=headers,
        body=body.strip(),
        content_id=part["Content-ID"],
        changeset=changeset,
    )


def new_boundary(prefix: str) -> str:
    """A boundary like the ones Microsoft's examples use."""
    return f"{prefix}_{uuid.uuid4()}"

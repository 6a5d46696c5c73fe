"""Transport settings from the environment: a custom CA bundle over real TLS, and proxies."""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from aioedge import (
    CredentialsError,
    EcsRamRoleProvider,
    EdgeClient,
    RamRoleArnProvider,
    RetryPolicy,
    TransportError,
    URICredentialsProvider,
    ValidationError,
)

from .support import TEST_CREDS, ok_body

NO_RETRY = RetryPolicy(max_attempts=1)


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@contextlib.asynccontextmanager
async def serving_tls(self_signed: tuple[Path, Path], app: web.Application) -> AsyncIterator[str]:
    """``app`` served over TLS on 127.0.0.1 with the self-signed certificate: its base URL."""
    cert, key = self_signed
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def tls_endpoint(self_signed: tuple[Path, Path]) -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(ok_body(Data={"InstanceId": "tls"}))

    app = web.Application()
    app.router.add_post("/", handle)
    async with serving_tls(self_signed, app) as url:
        yield url


async def test_custom_ca_bundle_is_honoured(
    tls_endpoint: str, self_signed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_CA_BUNDLE", str(self_signed[0]))
    async with EdgeClient(
        credentials=TEST_CREDS, endpoint=tls_endpoint, rate_limit=False, retry=NO_RETRY
    ) as c:
        body = await c.call("GetEdgeInstance", {"InstanceId": "x"})
    assert body["Data"]["InstanceId"] == "tls"


@pytest.mark.parametrize("kind", ["missing", "directory", "empty", "not PEM"])
async def test_a_ca_bundle_that_cannot_be_loaded_is_refused_when_the_client_is_built(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = {
        "missing": tmp_path / "nowhere.pem",
        "directory": tmp_path,
        "empty": tmp_path / "empty.pem",
        "not PEM": tmp_path / "junk.pem",
    }[kind]
    if kind == "empty":
        path.write_text("")
    if kind == "not PEM":
        path.write_text("not a certificate\n")
    monkeypatch.setenv("ALIBABA_CLOUD_CA_BUNDLE", str(path))
    with pytest.raises(ValidationError) as info:
        EdgeClient(credentials=TEST_CREDS, endpoint="https://127.0.0.1:1", rate_limit=False)
    assert info.value.param == "ALIBABA_CLOUD_CA_BUNDLE"
    assert str(path) in str(info.value) and "PEM bundle" in str(info.value)
    # A session of the caller's keeps its own TLS settings: the variable is not read.
    async with aiohttp.ClientSession() as session:
        EdgeClient(credentials=TEST_CREDS, endpoint="https://127.0.0.1:1", session=session)


@pytest.fixture
async def tls_credentials_uri(self_signed: tuple[Path, Path]) -> AsyncIterator[str]:
    """A credentials URI over TLS with the self-signed certificate, as a sidecar behind a
    TLS-inspecting proxy would look to the client."""

    async def handle(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "Code": "Success",
                "AccessKeyId": "STS.tls",
                "AccessKeySecret": "tls-secret",
                "SecurityToken": "tls-token",
                "Expiration": "2099-01-01T00:00:00Z",
            }
        )

    app = web.Application()
    app.router.add_get("/creds", handle)
    async with serving_tls(self_signed, app) as url:
        yield url + "/creds"


async def test_the_identity_services_trust_the_ca_bundle_too(
    tls_credentials_uri: str, self_signed: tuple[Path, Path], tmp_path: Path
) -> None:
    """STS, ECS metadata and a credentials URI are reached over the same TLS trust as the
    API: behind a TLS-inspecting proxy, the bundle that lets calls through lets the key
    through.  Without it the certificate is refused, and that is not a passing hiccup."""
    trusted = URICredentialsProvider(
        tls_credentials_uri, env={"ALIBABA_CLOUD_CA_BUNDLE": str(self_signed[0])}
    )
    assert (await trusted.get_credentials()).access_key_id == "STS.tls"
    untrusted = URICredentialsProvider(tls_credentials_uri, env={})
    with pytest.raises(CredentialsError) as info:
        await untrusted.get_credentials()
    assert info.value.code == "ConnectionError" and "Certificate" in str(info.value)
    assert info.value.transient is False
    missing = {"ALIBABA_CLOUD_CA_BUNDLE": str(tmp_path / "nowhere.pem")}
    for build in (
        lambda: URICredentialsProvider(tls_credentials_uri, env=missing),
        lambda: EcsRamRoleProvider(env=missing),
        lambda: RamRoleArnProvider("acs:ram::1:role/r", source=TEST_CREDS, env=missing),
    ):
        with pytest.raises(ValidationError) as bad:
            build()
        assert bad.value.param == "ALIBABA_CLOUD_CA_BUNDLE"


async def test_untrusted_certificate_fails_as_transport_error(
    tls_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALIBABA_CLOUD_CA_BUNDLE", raising=False)
    async with EdgeClient(
        credentials=TEST_CREDS, endpoint=tls_endpoint, rate_limit=False, retry=NO_RETRY
    ) as c:
        with pytest.raises(TransportError) as info:
            await c.call("GetEdgeInstance", {"InstanceId": "x"})
    # the TLS handshake failed: the request never reached the service
    assert info.value.maybe_executed is False


async def test_proxy_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        # a forward proxy receives the absolute URL of the target
        seen.append(str(request.url))
        await request.read()
        return web.json_response(ok_body(Data={"via": "proxy"}))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        for var in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
        target = "http://localhost:9"  # nothing listens there: only the proxy can answer
        async with EdgeClient(
            credentials=TEST_CREDS, endpoint=target, rate_limit=False, retry=NO_RETRY
        ) as c:
            body = await c.call("GetEdgeInstance", {"InstanceId": "x"})
    finally:
        await runner.cleanup()
    assert body["Data"]["via"] == "proxy"
    assert seen and "localhost:9" in seen[0]

"""Build both images with podman and check them the way a user runs them (`docker run` defaults).

Opt-in (slow, needs root + podman): ``KCR_IMAGE_TESTS=1 pytest tests/deploy/test_images.py``; add
``KCR_IMAGE_TESTS_ARM64=1`` for the linux/arm64 sklearn build + start under qemu (about 4 more minutes).
``images/ci-images.sh`` runs exactly that. Sizes and timings go to $KCR_IMAGE_REPORT
(default /tmp/kcr-image-report.json).

The official ollama/ollama image cannot be pulled here: the ollama-proxy image is built with
``OLLAMA_IMAGE=localhost/ollama-stub:test`` (images/ollama-stub: same file layout, a stdlib imitation of
the binary). External mode is tested against the llama-cpp Ollama stand-in (tests/ollama_standin) on the
host, reached with ``--net host``; managed mode and baked weights against the stub inside the image.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

if os.environ.get("KCR_IMAGE_TESTS") != "1":
    pytest.skip("image tests are opt-in: KCR_IMAGE_TESTS=1", allow_module_level=True)

from tests.deploy import containers as c

pytestmark = pytest.mark.timeout(1800)

ARM64 = os.environ.get("KCR_IMAGE_TESTS_ARM64") == "1"
SK_IRIS = "localhost/kcr-sklearn:test-iris"
SK_PLAIN = "localhost/kcr-sklearn:test"
SK_ARM64 = "localhost/kcr-sklearn:test-iris-arm64"
STUB = "localhost/ollama-stub:test"
OL = "localhost/kcr-ollama-proxy:test"
OL_BAKED = "localhost/kcr-ollama-proxy:test-baked"
VERSICOLOR, SETOSA = [6.8, 2.8, 4.8, 1.4], [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="session")
def env() -> dict[str, str]:
    start = time.monotonic()
    values = c.container_env(arm64=ARM64)
    os.environ.update(values)
    c.record("setup_seconds", "container-env.sh", round(time.monotonic() - start, 1))
    return values


@pytest.fixture(scope="session")
def sklearn_images(env: dict[str, str]) -> None:
    base = env["LOCAL_PYTHON_BASE"]
    c.build(SK_IRIS, "Dockerfile.sklearn", BASE_IMAGE=base, DEMO_MODEL="iris")
    c.build(SK_PLAIN, "Dockerfile.sklearn", BASE_IMAGE=base)


@pytest.fixture(scope="session")
def ollama_images(env: dict[str, str]) -> None:
    base = env["LOCAL_PYTHON_BASE"]
    c.build(STUB, "Dockerfile", context=c.ROOT / "images" / "ollama-stub", BASE_IMAGE=base)
    c.build(OL, "Dockerfile.ollama-proxy", BASE_IMAGE=base, OLLAMA_IMAGE=STUB)
    c.build(OL_BAKED, "Dockerfile.ollama-proxy", BASE_IMAGE=base, OLLAMA_IMAGE=STUB, BAKE_MODEL="1")


def _check_predictions(box: c.Container) -> None:
    status, body = box.post("/v1/models/iris:predict", {"instances": [VERSICOLOR, SETOSA]})
    assert status == 200, body
    assert body == {"predictions": [1, 0]}
    v2 = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": VERSICOLOR}]}
    status, body = box.post("/v2/models/iris/infer", v2)
    assert status == 200, body
    assert body["outputs"][0]["data"] == [1]


# --- sklearn ------------------------------------------------------------------------------------------


def test_sklearn_docker_run_defaults_predict(sklearn_images: None) -> None:
    """`docker run -p 8080:8080 IMAGE`: no args, no volume, the baked iris model answers."""
    with c.run(SK_IRIS, name="kcr-test-sklearn") as box:
        c.record("start_to_ready_seconds", "sklearn amd64", round(box.wait_ready(), 2))
        assert box.get("/v1/models/iris")[0] == 200
        assert box.get("/v2/models/iris/ready")[0] == 200
        assert box.get("/")[0] == 200
        _check_predictions(box)
        status, metrics = box.get("/metrics")
        assert status == 200
        assert b"request_predict_seconds" in metrics
        assert c.podman("exec", box.name, "id", "-u").stdout.strip() == "1000"
        assert c.podman("healthcheck", "run", box.name, check=False).returncode == 0
        assert c.podman("exec", box.name, "sh", "-c", "command -v curl || echo none").stdout.strip() == "none"


def test_sklearn_read_only_root_and_kserve_args(sklearn_images: None, tmp_path: Any) -> None:
    """What the Kubernetes manifests do: read-only root FS, no capabilities, KServe's args, /mnt/models."""
    models = tmp_path / "models"
    models.mkdir(mode=0o777)
    models.chmod(0o777)
    c.podman(
        "run",
        "--rm",
        "-v",
        f"{models}:/out",
        "--entrypoint",
        "cp",
        SK_IRIS,
        "/mnt/models/iris/model.joblib",
        "/out/model.joblib",
    )
    options = (
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "-v",
        f"{models}:/mnt/models:ro",
    )
    args = (
        "--model_name=iris",
        "--model_dir=/mnt/models",
        "--http_port=8080",
        "--enable_grpc=false",
        "--some_unknown_flag=1",
    )
    with c.run(SK_PLAIN, *args, name="kcr-test-sklearn-ro", options=options) as box:
        box.wait_ready()
        _check_predictions(box)
        assert "some_unknown_flag" in box.logs()


def test_sklearn_sigterm_drains_in_flight_request(sklearn_images: None) -> None:
    """SIGTERM reaches the server through dumb-init (PID 1); a request already in flight completes."""
    with c.run(SK_IRIS, name="kcr-test-sklearn-drain") as box:
        box.wait_ready()
        body = b'{"instances": [[6.8, 2.8, 4.8, 1.4]]}'
        with socket.create_connection(("127.0.0.1", box.port), timeout=20) as sock:
            head = (
                f"POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            sock.sendall(head + body[:10])
            time.sleep(0.5)  # the server has the request and waits for the rest of the body
            c.podman("kill", "--signal", "TERM", box.name)
            time.sleep(1.0)
            assert box.state()["Running"], "the server must wait for the in-flight request"
            sock.sendall(body[10:])
            reply = _read_http(sock)
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        assert reply.endswith(b'{"predictions":[1]}'), reply[-200:]
        deadline = time.monotonic() + 15
        while box.state()["Running"] and time.monotonic() < deadline:
            time.sleep(0.1)
        state = box.state()
        assert not state["Running"], "server still running 15 s after SIGTERM"
        assert state["ExitCode"] in (0, 128 + signal.SIGTERM), state  # uvicorn re-raises the signal
        assert "draining" in box.logs()


def _read_http(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return head + b"\r\n\r\n" + rest


@pytest.mark.skipif(not ARM64, reason="KCR_IMAGE_TESTS_ARM64=1 builds and runs linux/arm64 under qemu")
def test_sklearn_arm64_builds_and_predicts(env: dict[str, str]) -> None:
    c.build(
        SK_ARM64,
        "Dockerfile.sklearn",
        platform="linux/arm64",
        BASE_IMAGE=env["LOCAL_PYTHON_BASE_ARM64"],
        DEMO_MODEL="iris",
    )
    arch = c.podman("image", "inspect", SK_ARM64, "--format", "{{.Architecture}}").stdout.strip()
    assert arch == "arm64"
    with c.run(SK_ARM64, name="kcr-test-sklearn-arm64", options=("--platform", "linux/arm64")) as box:
        c.record("start_to_ready_seconds", "sklearn arm64 (qemu)", round(box.wait_ready(timeout=180), 2))
        assert c.podman("exec", box.name, "uname", "-m").stdout.strip() == "aarch64"
        _check_predictions(box)


# --- ollama-proxy -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def standin() -> Iterator[Any]:
    pytest.importorskip("llama_cpp", reason="the Ollama stand-in needs llama-cpp-python")
    from tests.ollama_standin.process import start_standin

    with start_standin(env={"STANDIN_PRELOAD": "1"}, timeout=120) as handle:
        yield handle


def _openai_chat(base_url: str, model: str) -> str:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=base_url, api_key="unused", timeout=120, max_retries=0)
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hello."}], max_tokens=16, temperature=0
    )
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].finish_reason in ("stop", "length")
    return reply.choices[0].message.content or ""


def test_ollama_proxy_external_mode_chat_with_openai_sdk(ollama_images: None, standin: Any) -> None:
    port = c.free_port()
    args = (
        "serve",
        "ollama",
        "--ollama-host",
        standin.url,
        "--model",
        "smollm2:135m",
        "--host",
        "127.0.0.1",
        "--http-port",
        str(port),
    )
    with c.run(
        OL,
        *args,
        name="kcr-test-ollama-external",
        host_net=True,
        port=port,
        options=("--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"),
    ) as box:
        c.record(
            "start_to_ready_seconds",
            "ollama-proxy external (stand-in)",
            round(box.wait_ready(timeout=180), 2),
        )
        assert c.podman("exec", box.name, "id", "-u").stdout.strip() == "1000"
        content = _openai_chat(f"{box.url}/v1", "smollm2:135m")
        assert content.strip()
        assert _openai_chat(f"{box.url}/openai/v1", "smollm2:135m").strip()


def test_ollama_proxy_managed_mode_default_command(ollama_images: None) -> None:
    """`docker run IMAGE`: the facade starts /usr/bin/ollama serve itself and pulls the default model."""
    with c.run(OL, name="kcr-test-ollama-managed") as box:
        c.record(
            "start_to_ready_seconds", "ollama-proxy managed (stub)", round(box.wait_ready(timeout=120), 2)
        )
        assert "pulling qwen2.5:0.5b" in box.logs()
        assert _openai_chat(f"{box.url}/v1", "qwen2.5:0.5b") == "Hello from the ollama stub."


def test_ollama_proxy_baked_weights_need_no_pull(ollama_images: None) -> None:
    """BAKE_MODEL=1: the weights are in the image; --no-pull and a read-only root still come up."""
    listing = c.podman(
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        OL_BAKED,
        "-c",
        "ls /models/manifests/registry.ollama.ai/library/qwen2.5",
    ).stdout
    assert "0.5b" in listing
    options = ("--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")
    args = ("serve", "ollama", "--ollama-bin", "/usr/bin/ollama", "--model", "qwen2.5:0.5b", "--no-pull")
    with c.run(OL_BAKED, *args, name="kcr-test-ollama-baked", options=options) as box:
        box.wait_ready(timeout=120)
        assert "pulling" not in box.logs()
        assert _openai_chat(f"{box.url}/openai/v1", "qwen2.5:0.5b")


def test_image_labels_and_sizes(sklearn_images: None, ollama_images: None) -> None:
    for tag in (SK_IRIS, OL):
        labels = c.podman("image", "inspect", tag, "--format", "{{json .Config.Labels}}").stdout
        assert "org.opencontainers.image.source" in labels and "org.opencontainers.image.version" in labels
        user = c.podman("image", "inspect", tag, "--format", "{{.Config.User}}").stdout.strip()
        assert user == "1000:1000"
    # No compilers in the final images; the sklearn image stays near the measured ~450 MB.
    for tag in (SK_IRIS, OL):
        out = subprocess.run(
            ["podman", "run", "--rm", "--entrypoint", "sh", tag, "-c", "command -v gcc cc g++ make || true"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.stdout.strip() == "", out.stdout
    assert c.image_size(SK_IRIS) < 600e6


# --- what ships is what was verified ------------------------------------------------------------------


def _sweep_in_image(image: str, mode: str, work: Any, *env: str) -> str:
    """``tests.integration.estimator_sweep MODE`` in a fresh container of ``image``: the image's own
    scikit-learn, scipy, numpy and pandas, and the kcr it ships; only the sweep script is mounted."""
    result = c.podman(
        "run", "--rm", "--entrypoint", "python", "-v", f"{c.ROOT / 'tests'}:/opt/kcr-tests/tests:ro",
        "-v", f"{work}:/sweep", "-e", "PYTHONPATH=/opt/kcr-tests", *env,
        image, "-m", "tests.integration.estimator_sweep", mode, "/sweep", timeout=1200,
    )  # fmt: skip
    return result.stdout


def test_the_deferred_imports_hold_for_every_estimator_inside_the_sklearn_image(
    sklearn_images: None, tmp_path: Any
) -> None:
    """The estimator sweep of tests/integration/test_deferred_imports.py, run with the image's
    libraries: every estimator answers the same with the deferred imports on, and no predict path
    runs a deferred module (the lists in runtimes/sklearn_imports.py hold for what ships)."""
    import json

    work = tmp_path / "sweep"
    work.mkdir()
    work.chmod(0o777)  # the image runs as uid 1000
    _sweep_in_image(SK_PLAIN, "fit", work, "-e", "KCR_DEFER_IMPORTS=false")
    index = json.loads((work / "index.json").read_text())["models"]
    report = json.loads(_sweep_in_image(SK_PLAIN, "serve", work).strip().splitlines()[-1])["models"]
    c.record("image_sweep", "estimators", len(report))
    assert len(report) == len(index) >= 150
    assert {name: row for name, row in report.items() if row.get("error") or row["mismatched"]} == {}
    assert {name: row["ran_by_predict"] for name, row in report.items() if row["ran_by_predict"]} == {}

"""Static checks of the deployment artefacts (no cluster, no containers; a few seconds).

- every InferenceService / ClusterServingRuntime in k8s/ validates against KServe's CRD schema
  (/work/shared/specs/crds, or ../shared/specs/crds beside the clone in CI), strictly: unknown fields fail;
- every KEDA ScaledObject validates against KEDA's CRD, vendored in tests/deploy/crds/ (its header says
  where it came from), as strictly, and scales a facade on metric names the facade exports;
- every built-in Kubernetes object validates against the Kubernetes 1.35 schema (the Kind node's version)
  with the PyPI package ``kubernetes-validate`` (ships the schemas, works offline), strictly;
- the walkthrough's pinned versions and its three pitfalls are where the scripts expect them;
- checkov over k8s/ and both Dockerfiles passes, and every skipped check carries a reason
  (skipped when checkov is not installed; ``KCR_CHECKOV=/path/to/checkov`` picks a separate venv's).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
KIND_NODE_VERSION = "1.35.0"
DOCKERFILES = [ROOT / "Dockerfile.sklearn", ROOT / "Dockerfile.ollama-proxy"]
STUB_DOCKERFILE = ROOT / "images" / "ollama-stub" / "Dockerfile"
BUILTIN_GROUPS = {
    "v1",
    "apps/v1",
    "batch/v1",
    "policy/v1",
    "autoscaling/v2",
    "networking.k8s.io/v1",
    "rbac.authorization.k8s.io/v1",
    "storage.k8s.io/v1",
}
# Kinds that are neither KServe's nor built in: checked for shape here, by their controllers in a cluster.
OTHER_KINDS = {
    ("source.toolkit.fluxcd.io/v1", "HelmRepository"),
    ("helm.toolkit.fluxcd.io/v2", "HelmRelease"),
    ("operator.knative.dev/v1beta1", "KnativeServing"),
}


def _crd_dir() -> Path:
    for candidate in (
        os.environ.get("KCR_CRD_DIR"),
        ROOT.parent / "shared" / "specs" / "crds",
        Path("/work/shared/specs/crds"),
    ):
        if candidate and Path(candidate, "serving.kserve.io_inferenceservices.yaml").is_file():
            return Path(candidate)
    pytest.skip("KServe CRDs not found (set KCR_CRD_DIR)")


def _docs() -> list[tuple[Path, int, dict[str, Any]]]:
    out = []
    for path in sorted(K8S.rglob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc:
                out.append((path, i, doc))
    return out


DOCS = _docs()


def _ids(items: list[tuple[Path, int, dict[str, Any]]]) -> list[str]:
    return [
        f"{p.relative_to(K8S)}#{i}:{d.get('kind')}/{d.get('metadata', {}).get('name')}" for p, i, d in items
    ]


def _of(pred: Any) -> list[tuple[Path, int, dict[str, Any]]]:
    return [item for item in DOCS if pred(item[2])]


KSERVE = _of(lambda d: str(d.get("apiVersion", "")).startswith("serving.kserve.io/"))
KEDA = _of(lambda d: str(d.get("apiVersion", "")).startswith("keda.sh/"))
KEDA_CRDS = Path(__file__).resolve().parent / "crds"
BUILTIN = _of(lambda d: d.get("apiVersion") in BUILTIN_GROUPS)
ISVCS = _of(lambda d: d.get("kind") == "InferenceService")
KIND_CONFIGS = _of(lambda d: d.get("apiVersion") == "kind.x-k8s.io/v1alpha4")


def _strict(schema: Any) -> Any:
    """Structural schema → JSON Schema that rejects unknown fields (the API server would prune them)."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def _crd_validators() -> dict[tuple[str, str], Any]:
    validators = {}
    paths = [*sorted(_crd_dir().glob("serving.kserve.io_*.yaml")), *sorted(KEDA_CRDS.glob("*.yaml"))]
    for path in paths:
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            schema["properties"]["metadata"] = {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {
                        "type": "string",
                        "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                        "maxLength": 63,
                    },
                    "namespace": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                },
                "additionalProperties": False,
            }
            schema["required"] = sorted(
                {*schema.get("required", []), "apiVersion", "kind", "metadata", "spec"}
            )
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            validators[key] = jsonschema.Draft7Validator(schema)
    return validators


def test_manifests_found() -> None:
    assert ISVCS, "no InferenceService in k8s/"
    assert {d["kind"] for _, _, d in KSERVE} >= {"InferenceService", "ClusterServingRuntime"}
    assert BUILTIN, "no built-in objects found"
    known = {(d.get("apiVersion"), d.get("kind")) for _, _, d in DOCS}
    unknown = {
        k
        for k in known
        if k[0] not in BUILTIN_GROUPS
        and not str(k[0]).startswith(("serving.kserve.io/", "keda.sh/"))
        and k not in OTHER_KINDS
        and k[0] != "kind.x-k8s.io/v1alpha4"
    }
    assert not unknown, f"objects no test validates: {unknown}"


@pytest.mark.parametrize(("path", "index", "doc"), KSERVE, ids=_ids(KSERVE))
def test_kserve_objects_match_crd_schema(path: Path, index: int, doc: dict[str, Any]) -> None:
    validator = _crd_validators().get((doc["apiVersion"], doc["kind"]))
    assert validator is not None, f"no CRD for {doc['apiVersion']} {doc['kind']}"
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(("path", "index", "doc"), KEDA, ids=_ids(KEDA))
def test_keda_objects_match_crd_schema(path: Path, index: int, doc: dict[str, Any]) -> None:
    validator = _crd_validators().get((doc["apiVersion"], doc["kind"]))
    assert validator is not None, f"no CRD for {doc['apiVersion']} {doc['kind']}"
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    assert not errors, "\n".join(errors)
    bad = copy.deepcopy(doc)
    bad["spec"]["maxReplicas"] = 3  # the ISVC's spelling: KEDA's is maxReplicaCount
    assert any("maxReplicas" in e.message for e in validator.iter_errors(bad))


def test_the_llm_scaledobject_scales_the_facade_on_vllm_metrics() -> None:
    import re as _re

    from server import generation_metrics

    exported = set(_re.findall(r'"(vllm:[a-z_]+)"', Path(generation_metrics.__file__).read_text()))
    (scaled,) = [d for _, _, d in KEDA if d["kind"] == "ScaledObject"]
    isvcs = {f"{d['metadata']['name']}-predictor": d for _, _, d in ISVCS}
    target = isvcs[scaled["spec"]["scaleTargetRef"]["name"]]  # a RawDeployment's Deployment
    annotations = target["metadata"]["annotations"]
    assert annotations["serving.kserve.io/deploymentMode"] == "RawDeployment"
    assert annotations["serving.kserve.io/autoscalerClass"] == "external"  # KServe leaves replicas to KEDA
    model = next(a.split("=", 1)[1] for a in target["spec"]["predictor"]["containers"][0]["args"]
                 if a.startswith("--model="))  # fmt: skip
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["type"] == "prometheus"
        used = set(_re.findall(r"vllm:[a-z_]+", trigger["metadata"]["query"]))
        names = {u.removesuffix("_bucket") for u in used}
        assert used and names <= exported, names - exported
        assert f'model_name="{model}"' in trigger["metadata"]["query"]


def test_crd_validation_rejects_typos() -> None:
    doc = copy.deepcopy(ISVCS[0][2])
    doc["spec"]["predictor"]["minReplica"] = 0
    validator = _crd_validators()[("serving.kserve.io/v1beta1", "InferenceService")]
    assert any("minReplica" in e.message for e in validator.iter_errors(doc))


@pytest.mark.parametrize(("path", "index", "doc"), BUILTIN, ids=_ids(BUILTIN))
def test_builtin_objects_match_kubernetes_schema(path: Path, index: int, doc: dict[str, Any]) -> None:
    kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    kv.validate(doc, KIND_NODE_VERSION, strict=True)


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    """Pod-like specs of every workload we ship (ISVC predictors, ServingRuntimes, Jobs)."""
    specs = []
    for _, _, d in DOCS:
        name = f"{d['kind']}/{d.get('metadata', {}).get('name')}"
        if d["kind"] == "InferenceService":
            specs.append((name, d["spec"]["predictor"]))
        elif d["kind"] == "ClusterServingRuntime":
            specs.append((name, d["spec"]))
        elif d["kind"] == "Job":
            specs.append((name, d["spec"]["template"]["spec"]))
    return specs


def _container_security(spec: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    return {**spec.get("securityContext", {}), **container.get("securityContext", {})}


def test_containers_are_hardened_and_sized() -> None:
    for name, spec in _pod_specs():
        for c in spec.get("containers", []):
            sc = _container_security(spec, c)
            assert sc.get("runAsNonRoot") is True, name
            assert sc.get("allowPrivilegeEscalation") is False, name
            assert sc.get("readOnlyRootFilesystem") is True, name
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], name
            assert sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), name
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]), name
            assert c.get("imagePullPolicy") == "IfNotPresent", name  # kind-loaded images


def test_custom_predictors_follow_kserve_conventions() -> None:
    for path, _, d in ISVCS:
        predictor, name = d["spec"]["predictor"], d["metadata"]["name"]
        annotations = d["metadata"].get("annotations", {})
        assert "autoscaling.knative.dev/min-scale" not in annotations, "use spec.predictor.minReplicas"
        assert "autoscaling.knative.dev/minScale" not in annotations, "use spec.predictor.minReplicas"
        assert "minReplicas" in predictor, name
        if "model" in predictor:  # through a ClusterServingRuntime
            continue
        (c,) = predictor["containers"]
        assert c["name"] == "kserve-container", name
        if c["ports"][0].get("name") == "h2c":  # the gRPC variant: Knative routes one port, HTTP/2
            assert c["ports"] == [{"name": "h2c", "containerPort": 8081, "protocol": "TCP"}], name
            assert "--grpc_port=8081" in c["args"] and "--enable_grpc=true" in c["args"], name
            assert c["readinessProbe"]["grpc"] == {"port": 8081}, name  # "" = readiness
            assert c["livenessProbe"]["grpc"] == {"port": 8081, "service": "liveness"}, name
        else:
            assert c["ports"] == [{"containerPort": 8080, "protocol": "TCP"}], name
            probe = c["readinessProbe"]["httpGet"]
            assert probe["port"] == 8080
            assert re.fullmatch(
                r"/v1/models/[\w.-]+|/v2/models/[\w.-]+/ready|/v2/health/ready", probe["path"]
            ), name
        if annotations.get("serving.kserve.io/deploymentMode") != "RawDeployment":
            assert annotations.get("serving.kserve.io/enable-prometheus-scraping") == "true", name
            assert annotations.get("prometheus.kserve.io/port") == "8080", name
        else:
            assert path.parent.name == "raw", name


def test_the_variants_exist() -> None:
    by_name = {d["metadata"]["name"]: d for _, _, d in ISVCS}
    serverless = [
        d
        for d in by_name.values()
        if d["metadata"].get("annotations", {}).get("serving.kserve.io/deploymentMode") is None
    ]
    raw = [
        d
        for d in by_name.values()
        if d["metadata"].get("annotations", {}).get("serving.kserve.io/deploymentMode") == "RawDeployment"
    ]

    def image(d: dict[str, Any]) -> str:
        return (
            d["spec"]["predictor"]["containers"][0]["image"] if "containers" in d["spec"]["predictor"] else ""
        )

    sk = [d for d in serverless if "kcr-sklearn" in image(d)]
    assert sk and all(d["spec"]["predictor"]["minReplicas"] == 0 for d in sk)
    assert any(
        e.get("name") == "STORAGE_URI"
        for d in sk
        for e in d["spec"]["predictor"]["containers"][0].get("env", [])
    ), "an sklearn ISVC with STORAGE_URI"
    assert any(image(d).endswith("-iris") for d in sk), "an sklearn ISVC with the baked model"
    assert any(d["spec"]["predictor"]["containers"][0]["ports"][0].get("name") == "h2c" for d in sk), (
        "an sklearn ISVC served over gRPC"
    )
    ol = [d for d in serverless if "kcr-ollama-proxy" in image(d)]
    assert any("qwen2.5-0.5b" in image(d) for d in ol), "ollama-proxy with baked weights"
    assert any(
        v.get("persistentVolumeClaim") for d in ol for v in d["spec"]["predictor"].get("volumes", [])
    ), "ollama-proxy PVC variant"
    assert {("kcr-sklearn" in image(d), "kcr-ollama-proxy" in image(d)) for d in raw} >= {
        (True, False),
        (False, True),
    }
    runtimes = {d["metadata"]["name"]: d for _, _, d in KSERVE if d["kind"] == "ClusterServingRuntime"}
    assert set(runtimes) >= {"kcr-sklearn", "kcr-ollama-proxy"}
    assert runtimes["kcr-sklearn"]["spec"]["supportedModelFormats"][0]["name"] == "sklearn"
    assert any(
        d["spec"]["predictor"].get("model", {}).get("runtime") == "kcr-sklearn" for d in by_name.values()
    )


def test_kind_cluster_has_an_inference_worker() -> None:
    (cfg,) = [d for _, _, d in KIND_CONFIGS]
    roles = [(n["role"], n.get("labels", {}).get("workload")) for n in cfg["nodes"]]
    assert roles == [("control-plane", None), ("worker", "system"), ("worker", "inference")]
    assert all(n["image"] == f"kindest/node:v{KIND_NODE_VERSION}" for n in cfg["nodes"])
    assert cfg["networking"]["disableDefaultCNI"] is True  # Cilium


def test_platform_versions_are_pinned() -> None:
    releases = {
        d["metadata"]["name"]: d["spec"]["chart"]["spec"] for _, _, d in DOCS if d["kind"] == "HelmRelease"
    }
    expected = {
        "metrics-server": ("metrics-server", "3.13.0"),
        "cert-manager": ("cert-manager", "v1.20.2"),
        "istio-base": ("base", "1.29.2"),
        "istiod": ("istiod", "1.29.2"),
        "istio-ingressgateway": ("gateway", "1.29.2"),
        "knative-operator": ("knative-operator", "v1.22.0"),
        "kserve-crd": ("kserve-crd", "v0.18.0"),
        "kserve-resources": ("kserve-resources", "v0.18.0"),
        "kserve-runtime-configs": ("kserve-runtime-configs", "v0.18.0"),
    }
    assert {k: (v["chart"], v["version"]) for k, v in releases.items()} == expected
    (ks,) = [d for _, _, d in DOCS if d["kind"] == "KnativeServing"]
    assert ks["spec"]["version"] == "1.22.0"
    versions = (K8S / "scripts" / "versions.sh").read_text()
    for pin in (
        "kindest/node:v1.35.0",
        "CILIUM_VERSION:-1.19.3",
        "METRICS_SERVER_CHART=3.13.0",
        "CERT_MANAGER_VERSION=v1.20.2",
        "ISTIO_VERSION=1.29.2",
        "KNATIVE_VERSION=1.22.0",
        "KSERVE_VERSION=v0.18.0",
    ):
        assert pin in versions, pin


def test_stack_script_handles_the_three_pitfalls() -> None:
    stack = (K8S / "scripts" / "stack-up.sh").read_text()
    assert "kserve-runtime-configs" in stack  # 1: the separate runtime-configs chart is waited for
    assert re.search(r"rollout restart deployment/kserve-controller-manager", stack)  # 2
    # 3: minReplicas, never the min-scale annotation (checked for every ISVC above)
    for _, _, d in DOCS:
        annotations = d.get("metadata", {}).get("annotations", {})
        assert not [k for k in annotations if "min-scale" in k.lower() or "minscale" in k.lower()]


def _dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_conventions(path: Path) -> None:
    ins = _dockerfile_instructions(path)
    global_args = {
        rest.split("=")[0] for word, rest in ins[: [w for w, _ in ins].index("FROM")] if word == "ARG"
    }
    assert "BASE_IMAGE" in global_args
    stages: set[str] = set()
    for word, rest in ins:
        if word != "FROM":
            continue
        parts = rest.split()
        parts = [p for p in parts if not p.startswith("--platform")]
        image = parts[0]
        ref = re.fullmatch(r"\$\{?(\w+)\}?", image)
        assert (ref and ref.group(1) in global_args) or image in stages, f"FROM {image} is not a build arg"
        if len(parts) == 3 and parts[1].upper() == "AS":
            stages.add(parts[2])
    final = ins[max(i for i, (w, _) in enumerate(ins) if w == "FROM") :]
    words = [w for w, _ in final]
    assert ("USER", "1000:1000") in final
    assert ("EXPOSE", "8080") in final
    if path.name == "Dockerfile.sklearn":
        assert ("EXPOSE", "8081") in final  # gRPC
    assert "HEALTHCHECK" in words and "curl" not in dict(final)["HEALTHCHECK"]
    assert "LABEL" in words and "org.opencontainers.image.source" in dict(final)["LABEL"]
    assert json.loads(dict(final)["ENTRYPOINT"])[0] == "dumb-init"  # PID 1 forwards SIGTERM, reaps


def _checkov() -> str | None:
    return os.environ.get("KCR_CHECKOV") or shutil.which("checkov")


def test_checkov_skips_are_justified() -> None:
    sources = [*K8S.rglob("*.yaml"), *DOCKERFILES, STUB_DOCKERFILE]
    for path in sources:
        for m in re.finditer(r"checkov(?::skip=|\.io/skip\d*:\s*)(CKV\w+)[:=]?(.*)", path.read_text()):
            check, reason = m.group(1), m.group(2)
            assert len(reason.strip(" \"'")) >= 10, f"{path.name}: skip of {check} has no reason"


@pytest.mark.skipif(_checkov() is None, reason="checkov not installed (pip install checkov; or KCR_CHECKOV)")
@pytest.mark.parametrize(
    ("framework", "targets"),
    [
        ("kubernetes", ["-d", str(K8S)]),
        ("dockerfile", [a for p in [*DOCKERFILES, STUB_DOCKERFILE] for a in ("-f", str(p))]),
    ],
)
def test_checkov_passes(framework: str, targets: list[str]) -> None:
    result = subprocess.run(
        [
            _checkov(),
            "--framework",
            framework,
            *targets,
            "--compact",
            "--quiet",
            "-o",
            "cli",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]

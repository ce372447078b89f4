"""Check the NuGet package that dotnet pack wrote: what a user gets.

usage: python3 check-package.py FEED VERSION
Prints "ok N - ..." / "not ok N - ..." per check.
"""
import re
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

feed, version = Path(sys.argv[1]), sys.argv[2]
package_id = "SignalRBackplane.Postgres"
root = Path(__file__).resolve().parents[2]
control = (root / "signalr_bp.control").read_text()
ext_version = re.search(r"^default_version = '([^']+)'", control, re.M).group(1)
n = 0


def check(name, cond, detail=""):
    global n
    n += 1
    print(f"{'ok' if cond else 'not ok'} {n} - package: {name}" + ("" if cond else f" ({detail})"))


nupkg = feed / f"{package_id}.{version}.nupkg"
snupkg = feed / f"{package_id}.{version}.snupkg"
check("the package and its symbols package exist", nupkg.is_file() and snupkg.is_file(), f"{nupkg}, {snupkg}")
if not nupkg.is_file():
    sys.exit(0)
pkg = zipfile.ZipFile(nupkg)
names = set(pkg.namelist())
ns = {"n": "http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"}
meta = ET.fromstring(pkg.read(f"{package_id}.nuspec")).find("n:metadata", ns)


def field(tag):
    e = meta.find(f"n:{tag}", ns)
    return "" if e is None or e.text is None else e.text.strip()


check("id", field("id") == package_id, field("id"))
check("version is the extension's (signalr_bp.control)",
      field("version") == version and version.split("-")[0] == ext_version,
      f"{field('version')} vs control {ext_version}")
lic = meta.find("n:license", ns)
check("license expression", lic is not None and lic.get("type") == "expression" and bool(lic.text),
      "no <license type=\"expression\">")
check("description", len(field("description")) > 40, field("description"))
readme = field("readme")
check("README inside, the adapter's, with the install command",
      readme in names and f"dotnet add package {package_id}" in pkg.read(readme).decode(), readme)
dll, doc = f"lib/net10.0/{package_id}.dll", f"lib/net10.0/{package_id}.xml"
check("assembly for net10.0", dll in names, sorted(names))
xml = pkg.read(doc).decode() if doc in names else ""
check("XML documentation of the public API", "AddPostgresBackplane" in xml and "IHubPresence" in xml, doc)
deps = [d.get("id") for d in meta.iter(f"{{{ns['n']}}}dependency")]
check("depends on Npgsql", "Npgsql" in deps, deps)
sym = zipfile.ZipFile(snupkg).namelist() if snupkg.is_file() else []
check("symbols package holds the PDB", f"lib/net10.0/{package_id}.pdb" in sym, sym)

"""Resolve the Delta jars with Maven into .jars/, leaving out those that clash with pyspark's jars.

Run by `make setup`. Maven resolves `jvm/pom.xml` (Delta and its whole dependency tree) into
.cache/maven-jars/; a jar is then copied to .jars/ only if none of its classes is already in
pyspark's own jars (Hadoop 3.5.0, Jackson, Parquet, Scala...). Two copies of a class on one
classpath is the classic source of NoSuchMethodError at run time, so every left-out jar and the
reason is written to .jars/RESOLUTION.txt.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGING = REPO / ".cache" / "maven-jars"
TARGET = REPO / ".jars"


def classes_in(jar: Path) -> set[str]:
    with zipfile.ZipFile(jar) as zf:
        return {
            n for n in zf.namelist()
            if n.endswith(".class") and not n.startswith("META-INF/") and n != "module-info.class"
        }


def pyspark_jars_dir() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def main() -> int:
    STAGING.mkdir(parents=True, exist_ok=True)
    for old in STAGING.glob("*.jar"):
        old.unlink()
    cmd = [
        "mvn", "-B", "-q", "-f", str(REPO / "jvm" / "pom.xml"),
        "dependency:copy-dependencies", f"-DoutputDirectory={STAGING}", "-DincludeScope=runtime",
    ]
    print("resolving Delta jars with Maven:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)

    spark_classes: dict[str, str] = {}
    for jar in sorted(pyspark_jars_dir().glob("*.jar")):
        for name in classes_in(jar):
            spark_classes.setdefault(name, jar.name)

    tmp = TARGET.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    report = []
    for jar in sorted(STAGING.glob("*.jar")):
        clashes = sorted({spark_classes[c] for c in classes_in(jar) if c in spark_classes})
        if clashes:
            report.append(f"left out {jar.name}: its classes are already in pyspark's {', '.join(clashes)}")
        else:
            shutil.copy2(jar, tmp / jar.name)
            report.append(f"kept     {jar.name}")
    (tmp / "RESOLUTION.txt").write_text("\n".join(report) + "\n")
    shutil.rmtree(TARGET, ignore_errors=True)
    tmp.rename(TARGET)
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

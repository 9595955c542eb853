"""Resolve the JVM jars with Maven into .jars/, leaving out those that clash with pyspark's jars.

Run by `make setup`. Maven resolves each group's pom and its whole dependency tree into
.cache/maven-jars/<group>/: Delta (`jvm/pom.xml`) into .jars/, the S3A connector (`jvm/s3/pom.xml`)
into .jars/s3/. A jar is then moved into place only if none of its classes is already in pyspark's
own jars (Hadoop 3.5.0, Jackson, Parquet, Scala...). Two copies of a class on one classpath is the
classic source of NoSuchMethodError at run time, so every left-out jar and the reason is written to
.jars/RESOLUTION.txt.
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
# (group, pom, folder under .jars/): the Delta jars every local session loads, the S3A ones only
# sessions with an s3a:// root.
GROUPS = (("delta", REPO / "jvm" / "pom.xml", "."), ("s3", REPO / "jvm" / "s3" / "pom.xml", "s3"))


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
    spark_classes: dict[str, str] = {}
    for jar in sorted(pyspark_jars_dir().glob("*.jar")):
        for name in classes_in(jar):
            spark_classes.setdefault(name, jar.name)

    tmp = TARGET.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(STAGING, ignore_errors=True)
    report = []
    for group, pom, folder in GROUPS:
        staging = STAGING / group
        cmd = ["mvn", "-B", "-q", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={staging}",
               "-DincludeScope=runtime"]
        print("resolving JVM jars with Maven:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        (tmp / folder).mkdir(parents=True, exist_ok=True)
        for jar in sorted(staging.glob("*.jar")):
            name = f"{folder}/{jar.name}".removeprefix("./")
            clashes = sorted({spark_classes[c] for c in classes_in(jar) if c in spark_classes})
            if clashes:
                report.append(f"left out {name}: its classes are already in pyspark's {', '.join(clashes)}")
            else:
                shutil.move(jar, tmp / folder / jar.name)  # moved, not copied: the AWS SDK bundle is ~690 MB
                report.append(f"kept     {name}")
    shutil.rmtree(STAGING)
    (tmp / "RESOLUTION.txt").write_text("\n".join(report) + "\n")
    shutil.rmtree(TARGET, ignore_errors=True)
    tmp.rename(TARGET)
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

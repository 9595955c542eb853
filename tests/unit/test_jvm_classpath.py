"""The jars set-up resolved must not repeat any class pyspark already ships (Hadoop 3.5.0 etc.)."""

import zipfile
from pathlib import Path

import pyspark

from palindrom.spark import JARS_DIR


def classes(jar: Path) -> set[str]:
    with zipfile.ZipFile(jar) as zf:
        return {n for n in zf.namelist() if n.endswith(".class") and not n.startswith("META-INF/")
                and n != "module-info.class"}


def test_delta_jars_are_resolved():
    names = {p.name for p in JARS_DIR.glob("*.jar")}
    assert any(n.startswith("delta-spark_4.2_2.13-") for n in names)
    assert any(n.startswith("delta-storage-") for n in names)


def test_no_class_is_both_in_our_jars_and_in_pyspark():
    spark_classes = set()
    for jar in (Path(pyspark.__file__).parent / "jars").glob("*.jar"):
        spark_classes |= classes(jar)
    clashes = {jar.name: sorted(classes(jar) & spark_classes)[:3] for jar in JARS_DIR.glob("*.jar")}
    assert {k: v for k, v in clashes.items() if v} == {}

"""The jars set-up resolved must not repeat any class pyspark already ships (Hadoop 3.5.0 etc.)."""

import zipfile
from pathlib import Path

import pyspark

from palindrom.spark import JARS_DIR, S3A_JARS_DIR


def classes(jar: Path) -> set[str]:
    with zipfile.ZipFile(jar) as zf:
        return {n for n in zf.namelist() if n.endswith(".class") and not n.startswith("META-INF/")
                and n != "module-info.class"}


def test_delta_jars_are_resolved():
    names = {p.name for p in JARS_DIR.glob("*.jar")}
    assert any(n.startswith("delta-spark_4.2_2.13-") for n in names)
    assert any(n.startswith("delta-storage-") for n in names)


def test_s3a_jars_match_pysparks_hadoop():
    names = {p.name for p in S3A_JARS_DIR.glob("*.jar")}
    hadoop = next((Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar")).name
    assert f"hadoop-aws-{hadoop.removeprefix('hadoop-client-api-')}" in names
    assert any(n.startswith("bundle-2.") for n in names)  # the AWS SDK v2 that S3A is built against


def test_no_class_is_both_in_our_jars_and_in_pyspark():
    spark_classes = set()
    for jar in (Path(pyspark.__file__).parent / "jars").glob("*.jar"):
        spark_classes |= classes(jar)
    clashes = {jar.name: sorted(classes(jar) & spark_classes)[:3] for jar in JARS_DIR.rglob("*.jar")}
    assert {k: v for k, v in clashes.items() if v} == {}

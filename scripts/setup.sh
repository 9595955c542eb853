#!/usr/bin/env bash
# One-time, idempotent local set-up: checks the toolchain, builds .venv/, resolves the JVM jars
# into .jars/ and fetches the servers the tests start (Apicurio Registry, the S3 API server
# s3proxy). Each step is skipped when its inputs have not changed since it last succeeded (stamps
# in .cache/stamps/).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
STAMPS=.cache/stamps
VENV_FREE_GB=${VENV_FREE_GB:-10}  # what a new .venv needs on its disk
PIP_TMP_FREE_GB=${PIP_TMP_FREE_GB:-4}  # pip holds every wheel it fetches in $TMPDIR until it is done
APICURIO_VERSION=$(sed -n 's:.*<apicurio.version>\(.*\)</apicurio.version>.*:\1:p' jvm/pom.xml)
S3PROXY_VERSION=$(sed -n 's:.*<s3proxy.version>\(.*\)</s3proxy.version>.*:\1:p' jvm/pom.xml)
mkdir -p "$STAMPS"

fail() { echo "setup: $*" >&2; exit 1; }

# --- toolchain -------------------------------------------------------------------------------
command -v "$PYTHON" >/dev/null || fail "Python 3.11+ is required ('$PYTHON' not found; set PYTHON=...)."
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || fail "Python 3.11+ is required; '$PYTHON' is $("$PYTHON" --version 2>&1)."
command -v java >/dev/null || fail "Java 17+ is required by Spark 4.2 and Apicurio: install a JDK 17 (e.g. apt-get install openjdk-17-jdk-headless)."
java_major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/ *java.specification.version = //p')
[ "${java_major%%.*}" -ge 17 ] 2>/dev/null || fail "Java 17+ is required; 'java' is version ${java_major:-unknown}."
command -v mvn >/dev/null || fail "Maven is required to resolve the Delta and S3A jars, Apicurio and s3proxy: install it (e.g. apt-get install maven)."
# Apicurio Registry 3 (started by the tests) needs Java 21+; Spark runs on the default Java 17.
apicurio_java=""
for java in ${APICURIO_JAVA_HOME:+$APICURIO_JAVA_HOME/bin/java} /usr/lib/jvm/*/bin/java; do
  v=$("$java" -XshowSettings:properties -version 2>&1 | sed -n 's/ *java.specification.version = //p')
  if [ "${v%%.*}" -ge 21 ] 2>/dev/null; then apicurio_java=$java; break; fi
done
[ -n "$apicurio_java" ] || fail "the Apicurio Registry tests need a Java 21+ runtime besides Java 17 (e.g. Temurin 21 under /usr/lib/jvm, or set APICURIO_JAVA_HOME)."

# A stamp is current when it is newer than every input named after it.
current() { local stamp=$STAMPS/$1; shift; [ -f "$stamp" ] || return 1; for f in "$@"; do [ "$f" -nt "$stamp" ] && return 1; done; return 0; }

# --- Python environment ----------------------------------------------------------------------
if ! current venv pyproject.toml constraints.txt || [ ! -x .venv/bin/pipelines ]; then
  echo "setup: creating .venv and installing pipelines[local,ml,dev] (first time: pyspark ~450 MB, torch with its CUDA libraries several GB)..."
  if [ ! -x .venv/bin/python ]; then
    # A full disk otherwise shows as pip's "[Errno 28] No space left on device" half-way through.
    # pip keeps the wheels it fetches (torch and its CUDA libraries alone: 2.8 GB) in $TMPDIR until
    # it has installed them all; where that is the repository's disk, the two needs add up.
    tmp=${TMPDIR:-/tmp}
    free_gb() { df -Pk "$1" | awk 'NR == 2 { print int($4 / 1048576) }'; }
    disk() { df -P "$1" | awk 'NR == 2 { print $1 }'; }
    if [ "$(disk .)" = "$(disk "$tmp")" ]; then
      need=$((VENV_FREE_GB + PIP_TMP_FREE_GB))
      [ "$(free_gb .)" -ge "$need" ] || fail "a new .venv (~7.5 GB: torch's CUDA libraries) and pip's downloads in $tmp need about $need GB free on their disk; $(pwd) has $(free_gb .) GB free."
    else
      [ "$(free_gb .)" -ge "$VENV_FREE_GB" ] || fail "a new .venv needs about $VENV_FREE_GB GB free (it is ~7.5 GB: torch's CUDA libraries); $(pwd) has $(free_gb .) GB free."
      [ "$(free_gb "$tmp")" -ge "$PIP_TMP_FREE_GB" ] || fail "pip's downloads need about $PIP_TMP_FREE_GB GB free in $tmp (\$TMPDIR) until they are installed; it has $(free_gb "$tmp") GB free (set TMPDIR to a folder on a larger disk)."
    fi
    "$PYTHON" -m venv .venv
  fi
  .venv/bin/python -m pip install --quiet --upgrade "pip==25.3"
  .venv/bin/python -m pip install --progress-bar off -c constraints.txt -e ".[local,ml,dev]"
  touch "$STAMPS/venv"
fi

# --- JVM jars (Delta; S3A for s3a:// roots) ----------------------------------------------------
if ! current jars jvm/pom.xml jvm/s3/pom.xml scripts/resolve_jars.py constraints.txt || [ ! -f .jars/RESOLUTION.txt ]; then
  echo "setup: resolving the Delta and S3A jars with Maven (first time: the AWS SDK bundle alone is ~690 MB)..."
  .venv/bin/python scripts/resolve_jars.py
  touch "$STAMPS/jars"
fi

# --- Apicurio Registry (started by the tests that need it) -----------------------------------
apicurio_dir=.cache/apicurio/$APICURIO_VERSION
if [ ! -f "$apicurio_dir/quarkus-run.jar" ]; then
  echo "setup: fetching Apicurio Registry $APICURIO_VERSION from Maven Central (~160 MB)..."
  mvn -B -q dependency:copy -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" \
      -DoutputDirectory=.cache/apicurio -Dmdep.overWriteIfNewer=true
  rm -rf "$apicurio_dir.tmp" && mkdir -p "$apicurio_dir.tmp"
  tar -xzf ".cache/apicurio/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz" -C "$apicurio_dir.tmp"
  run_jar=$(find "$apicurio_dir.tmp" -name quarkus-run.jar | head -n 1)
  [ -n "$run_jar" ] || fail "the Apicurio archive has no quarkus-run.jar"
  rm -rf "$apicurio_dir" && mv "$(dirname "$run_jar")" "$apicurio_dir" && rm -rf "$apicurio_dir.tmp"
  rm -f ".cache/apicurio/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz"
fi

# --- s3proxy: an S3 API server (in-memory) for the tests of s3a:// storage roots -----------------
s3proxy_jar=.cache/s3proxy/$S3PROXY_VERSION/s3proxy.jar
if [ ! -f "$s3proxy_jar" ]; then
  echo "setup: fetching s3proxy $S3PROXY_VERSION from Maven Central (~50 MB)..."
  rm -rf .cache/s3proxy/download
  mvn -B -q dependency:copy -Dartifact="org.gaul:s3proxy:$S3PROXY_VERSION:jar:jar-with-dependencies" \
      -DoutputDirectory=.cache/s3proxy/download
  mkdir -p "$(dirname "$s3proxy_jar")"
  mv ".cache/s3proxy/download/s3proxy-$S3PROXY_VERSION-jar-with-dependencies.jar" "$s3proxy_jar"
  rm -rf .cache/s3proxy/download
fi
echo "setup: ready (.venv, .jars, Apicurio $APICURIO_VERSION, s3proxy $S3PROXY_VERSION)"

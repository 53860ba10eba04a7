"""Finding Java and Maven, and turning Maven's failures into errors an operator can act on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from linkwatch.deploy.errors import StackError

MIN_JAVA = 17


def find_java() -> str:
    """The ``java`` executable (``$JAVA_HOME/bin/java`` first), checked to be Java 17 or newer."""
    home = os.environ.get("JAVA_HOME")
    candidate = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not candidate or not os.access(candidate, os.X_OK):
        raise StackError(
            "Java was not found (needed to run the Kafka broker)",
            f"install Java {MIN_JAVA} or newer, e.g. `apt-get install openjdk-17-jre-headless`, "
            "or set JAVA_HOME",
        )
    out = subprocess.run([candidate, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise StackError(
            f"could not tell the version of Java at {candidate}", "set JAVA_HOME to a JDK 17+"
        )
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise StackError(
            f"Java {major} at {candidate} is too old for Kafka 4 (needs {MIN_JAVA}+)",
            "install openjdk-17-jre-headless or set JAVA_HOME to a newer JDK",
        )
    return candidate


def find_maven() -> str:
    """The ``mvn`` executable."""
    mvn = shutil.which("mvn")
    if not mvn:
        raise StackError(
            "Maven (mvn) was not found (needed once, to download the Kafka broker's jars)",
            "install it, e.g. `apt-get install maven`",
        )
    return mvn


def maven_copy_dependencies(
    pom: Path, output_dir: Path, properties: dict[str, str], log: Path
) -> None:
    """Resolve the runtime dependencies of ``pom`` and copy their jars into ``output_dir``.

    Maven's own output goes to ``log``; on failure the first error line is raised.
    """
    argv = [
        find_maven(),
        "--batch-mode",
        "--no-transfer-progress",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={output_dir}",
        "-DincludeScope=runtime",
        *(f"-D{k}={v}" for k, v in properties.items()),
    ]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        code = subprocess.run(
            argv, stdout=out, stderr=subprocess.STDOUT, cwd=pom.parent, check=False
        ).returncode
    if code != 0:
        errors = [
            line
            for line in log.read_text(errors="replace").splitlines()
            if line.startswith("[ERROR]")
        ]
        first = errors[0].removeprefix("[ERROR]").strip() if errors else f"mvn exited with {code}"
        raise StackError(
            f"Maven could not download the Kafka broker: {first[:400]}",
            f"check that Maven Central (or your mirror in ~/.m2/settings.xml) is reachable and the "
            f"version exists; full log: {log}",
        )

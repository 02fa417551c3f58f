"""A private OpenLDAP ``slapd`` (Debian package ``slapd``) on a free port with its own tree.

The tree is loaded with ``slapadd`` into a temporary directory; ``slapd`` runs as the current
user in the foreground and answers on ``ldap://127.0.0.1:PORT``.  Anonymous users can search
nothing: the service account must bind first, as in a real directory.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import missing_service
from tests.support.procs import free_port

SUFFIX = "dc=kraken,dc=test"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
SERVICE_DN = f"cn=kraken-reader,{SUFFIX}"
SERVICE_PASSWORD = "reader-secret-1"
ROOT_DN = f"cn=root,{SUFFIX}"
ROOT_PASSWORD = "root-secret-1"

CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
database mdb
maxsize 16777216
suffix "{suffix}"
rootdn "cn=root,{suffix}"
rootpw {root_password}
directory {dir}/db
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
"""


def _entries(users: dict[str, str], groups: dict[str, list[str]]) -> str:
    blocks = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: kraken\no: Kraken test",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups",
        f"dn: {SERVICE_DN}\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: kraken-reader\n"
        f"sn: reader\nuserPassword: {SERVICE_PASSWORD}",
    ]
    for uid, password in users.items():
        blocks.append(
            f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n"
            f"userPassword: {password}"
        )
    for name, members in groups.items():
        lines = "".join(f"member: uid={m},{PEOPLE}\n" for m in members)
        blocks.append(f"dn: cn={name},{GROUPS}\nobjectClass: groupOfNames\ncn: {name}\n{lines}".rstrip())
    return "\n\n".join(blocks) + "\n"


class Slapd:
    def __init__(self, workdir: Path, users: dict[str, str], groups: dict[str, list[str]]) -> None:
        exe, add = shutil.which("slapd") or "/usr/sbin/slapd", shutil.which("slapadd") or "/usr/sbin/slapadd"
        if not Path(exe).exists() or not Path(add).exists():
            missing_service("slapd (Debian package slapd; scripts/services.sh installs it)", FileNotFoundError(exe))
        self.dir = workdir / "slapd"
        (self.dir / "db").mkdir(parents=True)
        self.config = self.dir / "slapd.conf"
        self.config.write_text(CONFIG.format(dir=self.dir, suffix=SUFFIX, root_password=ROOT_PASSWORD))
        (self.dir / "tree.ldif").write_text(_entries(users, groups))
        subprocess.run(
            [add, "-f", str(self.config), "-l", str(self.dir / "tree.ldif")],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.exe = exe
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.dir / "slapd.log").open("ab")
        # -d 0: stay in the foreground (a child of the test), no debug output
        self.proc = subprocess.Popen(
            [self.exe, "-f", str(self.config), "-h", self.url + "/", "-d", "0"], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while True:  # slapd gives no readiness signal but its listening socket
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"slapd did not start: {(self.dir / 'slapd.log').read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self.proc = None

    def set_members(self, group: str, members: list[str]) -> None:
        """Replace the members of ``group`` (as the directory's administrator would)."""
        from ldap3 import MODIFY_REPLACE, Connection

        with Connection(self.url, ROOT_DN, ROOT_PASSWORD, auto_bind=True, raise_exceptions=True) as conn:
            conn.modify(f"cn={group},{GROUPS}", {"member": [(MODIFY_REPLACE, [f"uid={m},{PEOPLE}" for m in members])]})

    def env(self, **extra: str) -> dict[str, str]:
        """The ``KRAKEN_LDAP_*`` settings of a server that logs in through this directory."""
        return {
            "KRAKEN_LDAP_URL": self.url,
            "KRAKEN_LDAP_BIND_DN": SERVICE_DN,
            "KRAKEN_LDAP_BIND_PASSWORD": SERVICE_PASSWORD,
            "KRAKEN_LDAP_USER_BASE": PEOPLE,
            "KRAKEN_LDAP_GROUP_BASE": GROUPS,
            **extra,
        }

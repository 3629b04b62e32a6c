"""`tlog`: the issuer, operator and verifier tool. Click wiring only: each command lives in its own `cmd_*` module;
those modules (with `clikit`) are the only ones in tools/ that read and write files (and the environment:
TLOG_POLICY). Every command has --help with an example.

    tlog keygen --name moeys.gov.kh --out issuer.key          [--kind issuer|log|registry|witness]
    tlog issuer add|retire|list --log URL ...
    tlog submit --log URL --key issuer.key diploma.pdf docs/ [--csv hashes.csv] [--out DIR] [--qr offline]
    tlog revoke --log URL --key issuer.key diploma.pdf --reason "issued in error"
    tlog verify diploma.pdf --policy trust.policy              [--bundle F | --qr-image F | --qr-text T] [--log URL]
    tlog refresh diploma.pdf.tlog-proof --log URL --policy trust.policy   [--out F]
    tlog policy check trust.policy
    tlog verifier-site --policy trust.policy --log URL --out DIR   (a static verifier page others can host)
    tlog trust-rotation --from OLD/trust-policy.txt --to NEW/trust-policy.txt --registry-key K --out R.json
    tlog checkpoint --log URL --policy trust.policy
    tlog proof inclusion|consistency --log URL ...
"""

import click

from tools.cmd_issuer import issuer
from tools.cmd_keys import keygen, vkey
from tools.cmd_policy import policy
from tools.cmd_read import checkpoint, proof
from tools.cmd_refresh import refresh
from tools.cmd_revoke import revoke
from tools.cmd_site import trust_rotation, verifier_site
from tools.cmd_submit import submit
from tools.cmd_verify import verify


@click.group()
def main() -> None:
    """Issue, submit and verify documents on a transparency log."""


for command in (
    keygen,
    vkey,
    policy,
    submit,
    revoke,
    verify,
    refresh,
    issuer,
    checkpoint,
    proof,
    verifier_site,
    trust_rotation,
):
    main.add_command(command)

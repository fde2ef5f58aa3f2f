"""alert_channels.secret_hint: what the UI shows of a channel's secret, now that the secret is encrypted

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-02 04:10:00

Channel secrets are encrypted by the server (alerts/secret_box.py) with a key the database does
not hold, so the masked form shown in lists is kept beside them. Existing rows are still plain
text here: their hint is computed now, and the alert job encrypts them on its next cycle.
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('alert_channels', sa.Column('secret_hint', sa.Text(), nullable=True))
    # Frozen copy of core.alerts.mask_secret at this revision.
    op.execute("""UPDATE alert_channels SET secret_hint =
        CASE WHEN length(secret) >= 12 THEN '••••' || right(secret, 4) ELSE '••••' END
        WHERE secret IS NOT NULL AND secret <> ''""")


def downgrade() -> None:
    # Encrypted secrets cannot be decrypted here (the key is not in the database). Refuse rather
    # than leave channels an older server would use wrongly.
    encrypted = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM alert_channels WHERE secret LIKE 'fernet:%'")).scalar_one()
    if encrypted:
        raise RuntimeError(f"{encrypted} alert channel secret(s) are encrypted, and a server of an older "
                           "version would send the ciphertext as the secret: remove those channels first "
                           "and create them again after the downgrade")
    op.drop_column('alert_channels', 'secret_hint')

"""The county alliance catalog (entries, agreements, price changes, their history), the alliance
roles, and the indexes that keep product look-up type-ahead fast at alliance scale (PostgreSQL).

The suggest query (selectors.stock.suggest_products) asks, within one hospital, for a code or UDI-DI
prefix or a name substring, case-insensitively: `UPPER(code::text) LIKE 'AL001%'`, `udi_di::text LIKE
'0697…%'`, `UPPER(name::text) LIKE '%输液器%'`. Prefixes are btree range scans (text_pattern_ops, so
whatever the database's collation), per hospital; a substring needs a trigram GIN index. Trigrams
would also serve prefixes, but zero-padded codes share their trigrams across the whole catalog.
"""
import django.core.validators
import django.db.models.deletion
import django.utils.timezone
import pghistory.utils
import pgtrigger.compiler
import pgtrigger.migrations
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


ALLIANCE_ROLES = ["alliance_operator", "alliance_auditor", "alliance_admin"]

LOOKUP_INDEXES = [
    ("inventory_product_code_prefix", "inventory_product",
     "btree (hospital_id, (UPPER((internal_code)::text)) text_pattern_ops)"),
    ("inventory_product_di_prefix", "inventory_product", "btree (hospital_id, ((udi_di)::text) text_pattern_ops)"),
    ("inventory_product_name_trgm", "inventory_product", "gin ((UPPER((name)::text)) gin_trgm_ops)"),
    ("inventory_allianceentry_code_prefix", "inventory_allianceentry",
     "btree (alliance, (UPPER((code)::text)) text_pattern_ops)"),
    ("inventory_allianceentry_name_trgm", "inventory_allianceentry", "gin ((UPPER((name)::text)) gin_trgm_ops)"),
]


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ALLIANCE_ROLES:
        Group.objects.get_or_create(name=name)


def drop_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ALLIANCE_ROLES).delete()


def create_lookup_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm", params=None)
    for name, table, definition in LOOKUP_INDEXES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING {definition}", params=None)


def drop_lookup_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _, _ in LOOKUP_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}", params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('inventory', '0034_review_reviewer_and_clinical_teams'),
    ]

    operations = [
        migrations.CreateModel(
            name='AllianceAgreement',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('unit_price', models.DecimalField(decimal_places=2, max_digits=12, validators=[django.core.validators.MinValueValidator(Decimal('0'))], verbose_name='purchase price')),
                ('valid_from', models.DateField(verbose_name='valid from')),
                ('valid_to', models.DateField(verbose_name='valid to')),
                ('platform_reference', models.CharField(blank=True, max_length=64, verbose_name='procurement platform reference')),
                ('vbp_contract', models.CharField(blank=True, max_length=64, verbose_name='VBP contract (集采合同)')),
                ('is_active', models.BooleanField(default=True, verbose_name='active')),
            ],
            options={
                'verbose_name': 'alliance supply agreement',
                'ordering': ['entry', '-valid_from'],
            },
        ),
        migrations.CreateModel(
            name='AllianceAgreementChange',
            fields=[
                ('pgh_id', models.AutoField(primary_key=True, serialize=False)),
                ('pgh_created_at', models.DateTimeField(auto_now_add=True)),
                ('pgh_label', models.TextField(help_text='The event label.')),
                ('pgh_context', pghistory.utils.JSONField(null=True)),
                ('pgh_context_id', models.UUIDField(null=True)),
                ('id', models.BigIntegerField()),
                ('unit_price', models.DecimalField(decimal_places=2, max_digits=12, validators=[django.core.validators.MinValueValidator(Decimal('0'))], verbose_name='purchase price')),
                ('valid_from', models.DateField(verbose_name='valid from')),
                ('valid_to', models.DateField(verbose_name='valid to')),
                ('platform_reference', models.CharField(blank=True, max_length=64, verbose_name='procurement platform reference')),
                ('vbp_contract', models.CharField(blank=True, max_length=64, verbose_name='VBP contract (集采合同)')),
                ('is_active', models.BooleanField(default=True, verbose_name='active')),
            ],
            options={
                'abstract': False,
            },
        ),
        migrations.CreateModel(
            name='AllianceEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('alliance', models.CharField(max_length=200, verbose_name='county alliance (医共体)')),
                ('code', models.CharField(max_length=32, verbose_name='alliance code (联盟编码)')),
                ('name', models.CharField(max_length=200, verbose_name='name')),
                ('specification', models.CharField(blank=True, max_length=200, verbose_name='specification / model (规格型号)')),
                ('category', models.CharField(blank=True, max_length=100, verbose_name='class (分类)')),
                ('udi_di', models.CharField(max_length=64, verbose_name='UDI-DI')),
                ('nhsa_code', models.CharField(blank=True, max_length=32, verbose_name='医保耗材编码')),
                ('unit_of_measure', models.CharField(default='个', max_length=16, verbose_name='base unit (库存单位)')),
                ('is_high_value', models.BooleanField(default=False, verbose_name='high value (高值)')),
                ('tracking', models.CharField(choices=[('UNIT', 'Per unit (一物一码)'), ('LOT', 'Per lot')], max_length=4, verbose_name='tracking mode')),
                ('is_active', models.BooleanField(default=True, verbose_name='active')),
            ],
            options={
                'verbose_name': 'alliance catalog entry (联盟目录)',
                'ordering': ['alliance', 'code'],
            },
        ),
        migrations.CreateModel(
            name='AllianceEntryChange',
            fields=[
                ('pgh_id', models.AutoField(primary_key=True, serialize=False)),
                ('pgh_created_at', models.DateTimeField(auto_now_add=True)),
                ('pgh_label', models.TextField(help_text='The event label.')),
                ('pgh_context', pghistory.utils.JSONField(null=True)),
                ('pgh_context_id', models.UUIDField(null=True)),
                ('id', models.BigIntegerField()),
                ('alliance', models.CharField(max_length=200, verbose_name='county alliance (医共体)')),
                ('code', models.CharField(max_length=32, verbose_name='alliance code (联盟编码)')),
                ('name', models.CharField(max_length=200, verbose_name='name')),
                ('specification', models.CharField(blank=True, max_length=200, verbose_name='specification / model (规格型号)')),
                ('category', models.CharField(blank=True, max_length=100, verbose_name='class (分类)')),
                ('udi_di', models.CharField(max_length=64, verbose_name='UDI-DI')),
                ('nhsa_code', models.CharField(blank=True, max_length=32, verbose_name='医保耗材编码')),
                ('unit_of_measure', models.CharField(default='个', max_length=16, verbose_name='base unit (库存单位)')),
                ('is_high_value', models.BooleanField(default=False, verbose_name='high value (高值)')),
                ('tracking', models.CharField(choices=[('UNIT', 'Per unit (一物一码)'), ('LOT', 'Per lot')], max_length=4, verbose_name='tracking mode')),
                ('is_active', models.BooleanField(default=True, verbose_name='active')),
            ],
            options={
                'abstract': False,
            },
        ),
        migrations.CreateModel(
            name='AlliancePriceChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('old_price', models.DecimalField(decimal_places=2, max_digits=12, verbose_name='old price')),
                ('new_price', models.DecimalField(decimal_places=2, max_digits=12, verbose_name='new price')),
                ('effective_from', models.DateField(verbose_name='effective from')),
                ('reason', models.CharField(max_length=500, verbose_name='reason')),
                ('recorded_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='recorded at')),
                ('members_changed', models.PositiveIntegerField(default=0, verbose_name='member agreements changed')),
            ],
            options={
                'verbose_name': 'alliance price change (联盟调价)',
                'ordering': ['-recorded_at'],
            },
        ),
        pgtrigger.migrations.RemoveTrigger(
            model_name='product',
            name='history_create',
        ),
        pgtrigger.migrations.RemoveTrigger(
            model_name='product',
            name='history_update',
        ),
        pgtrigger.migrations.RemoveTrigger(
            model_name='product',
            name='history_delete',
        ),
        pgtrigger.migrations.RemoveTrigger(
            model_name='supplyagreement',
            name='history_create',
        ),
        pgtrigger.migrations.RemoveTrigger(
            model_name='supplyagreement',
            name='history_update',
        ),
        pgtrigger.migrations.RemoveTrigger(
            model_name='supplyagreement',
            name='history_delete',
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='product',
            trigger=pgtrigger.compiler.Trigger(name='history_create', sql=pgtrigger.compiler.UpsertTriggerSql(func='INSERT INTO "inventory_productchange" ("alliance_entry_id", "category", "expensed_on_issue", "his_charge_code", "hospital_id", "id", "internal_code", "is_active", "is_consignment", "is_high_value", "manufacturer_id", "min_shelf_life_days", "name", "nhsa_code", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "registration_certificate_id", "return_deadline_hours", "specification", "storage_max_c", "storage_min_c", "tracking", "udi_di", "unit_of_measure") VALUES (NEW."alliance_entry_id", NEW."category", NEW."expensed_on_issue", NEW."his_charge_code", NEW."hospital_id", NEW."id", NEW."internal_code", NEW."is_active", NEW."is_consignment", NEW."is_high_value", NEW."manufacturer_id", NEW."min_shelf_life_days", NEW."name", NEW."nhsa_code", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, NOW(), \'create\', NEW."id", NEW."registration_certificate_id", NEW."return_deadline_hours", NEW."specification", NEW."storage_max_c", NEW."storage_min_c", NEW."tracking", NEW."udi_di", NEW."unit_of_measure"); RETURN NULL;', hash='5062043a6e4f12be98c3db3dee639d358bc0a6d8', operation='INSERT', pgid='pgtrigger_history_create_59992', table='inventory_product', when='AFTER')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='product',
            trigger=pgtrigger.compiler.Trigger(name='history_update', sql=pgtrigger.compiler.UpsertTriggerSql(condition='WHEN (OLD.* IS DISTINCT FROM NEW.*)', func='INSERT INTO "inventory_productchange" ("alliance_entry_id", "category", "expensed_on_issue", "his_charge_code", "hospital_id", "id", "internal_code", "is_active", "is_consignment", "is_high_value", "manufacturer_id", "min_shelf_life_days", "name", "nhsa_code", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "registration_certificate_id", "return_deadline_hours", "specification", "storage_max_c", "storage_min_c", "tracking", "udi_di", "unit_of_measure") VALUES (NEW."alliance_entry_id", NEW."category", NEW."expensed_on_issue", NEW."his_charge_code", NEW."hospital_id", NEW."id", NEW."internal_code", NEW."is_active", NEW."is_consignment", NEW."is_high_value", NEW."manufacturer_id", NEW."min_shelf_life_days", NEW."name", NEW."nhsa_code", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, NOW(), \'update\', NEW."id", NEW."registration_certificate_id", NEW."return_deadline_hours", NEW."specification", NEW."storage_max_c", NEW."storage_min_c", NEW."tracking", NEW."udi_di", NEW."unit_of_measure"); RETURN NULL;', hash='72c8239194c9afc8152920ac7ccbb3f6f95b6c01', operation='UPDATE', pgid='pgtrigger_history_update_00855', table='inventory_product', when='AFTER')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='product',
            trigger=pgtrigger.compiler.Trigger(name='history_delete', sql=pgtrigger.compiler.UpsertTriggerSql(func='INSERT INTO "inventory_productchange" ("alliance_entry_id", "category", "expensed_on_issue", "his_charge_code", "hospital_id", "id", "internal_code", "is_active", "is_consignment", "is_high_value", "manufacturer_id", "min_shelf_life_days", "name", "nhsa_code", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "registration_certificate_id", "return_deadline_hours", "specification", "storage_max_c", "storage_min_c", "tracking", "udi_di", "unit_of_measure") VALUES (OLD."alliance_entry_id", OLD."category", OLD."expensed_on_issue", OLD."his_charge_code", OLD."hospital_id", OLD."id", OLD."internal_code", OLD."is_active", OLD."is_consignment", OLD."is_high_value", OLD."manufacturer_id", OLD."min_shelf_life_days", OLD."name", OLD."nhsa_code", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, NOW(), \'delete\', OLD."id", OLD."registration_certificate_id", OLD."return_deadline_hours", OLD."specification", OLD."storage_max_c", OLD."storage_min_c", OLD."tracking", OLD."udi_di", OLD."unit_of_measure"); RETURN NULL;', hash='6d299911708ccadec7aea00e12ca02b0364b42f3', operation='DELETE', pgid='pgtrigger_history_delete_a1556', table='inventory_product', when='AFTER')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='supplyagreement',
            trigger=pgtrigger.compiler.Trigger(name='history_create', sql=pgtrigger.compiler.UpsertTriggerSql(func='INSERT INTO "inventory_supplyagreementchange" ("alliance_agreement_id", "hospital_id", "id", "is_active", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "platform_reference", "product_id", "supplier_id", "unit_price", "valid_from", "valid_to", "vbp_contract") VALUES (NEW."alliance_agreement_id", NEW."hospital_id", NEW."id", NEW."is_active", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, NOW(), \'create\', NEW."id", NEW."platform_reference", NEW."product_id", NEW."supplier_id", NEW."unit_price", NEW."valid_from", NEW."valid_to", NEW."vbp_contract"); RETURN NULL;', hash='43003083c70471d09d027bf0eb67463432212637', operation='INSERT', pgid='pgtrigger_history_create_88021', table='inventory_supplyagreement', when='AFTER')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='supplyagreement',
            trigger=pgtrigger.compiler.Trigger(name='history_update', sql=pgtrigger.compiler.UpsertTriggerSql(condition='WHEN (OLD.* IS DISTINCT FROM NEW.*)', func='INSERT INTO "inventory_supplyagreementchange" ("alliance_agreement_id", "hospital_id", "id", "is_active", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "platform_reference", "product_id", "supplier_id", "unit_price", "valid_from", "valid_to", "vbp_contract") VALUES (NEW."alliance_agreement_id", NEW."hospital_id", NEW."id", NEW."is_active", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, NOW(), \'update\', NEW."id", NEW."platform_reference", NEW."product_id", NEW."supplier_id", NEW."unit_price", NEW."valid_from", NEW."valid_to", NEW."vbp_contract"); RETURN NULL;', hash='f8ae47e980aa85a1e2ca2b7719d311686d980d01', operation='UPDATE', pgid='pgtrigger_history_update_8cc61', table='inventory_supplyagreement', when='AFTER')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='supplyagreement',
            trigger=pgtrigger.compiler.Trigger(name='history_delete', sql=pgtrigger.compiler.UpsertTriggerSql(func='INSERT INTO "inventory_supplyagreementchange" ("alliance_agreement_id", "hospital_id", "id", "is_active", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "platform_reference", "product_id", "supplier_id", "unit_price", "valid_from", "valid_to", "vbp_contract") VALUES (OLD."alliance_agreement_id", OLD."hospital_id", OLD."id", OLD."is_active", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, NOW(), \'delete\', OLD."id", OLD."platform_reference", OLD."product_id", OLD."supplier_id", OLD."unit_price", OLD."valid_from", OLD."valid_to", OLD."vbp_contract"); RETURN NULL;', hash='b14d3f8150f439665b41e5aa4db14f1f2644bdbb', operation='DELETE', pgid='pgtrigger_history_delete_7c602', table='inventory_supplyagreement', when='AFTER')),
        ),
        migrations.AddField(
            model_name='allianceagreement',
            name='supplier',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='inventory.supplier'),
        ),
        migrations.AddField(
            model_name='supplyagreement',
            name='alliance_agreement',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='member_agreements', to='inventory.allianceagreement', verbose_name='alliance agreement'),
        ),
        migrations.AddField(
            model_name='supplyagreementchange',
            name='alliance_agreement',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', related_query_name='+', to='inventory.allianceagreement', verbose_name='alliance agreement'),
        ),
        migrations.AddField(
            model_name='allianceagreementchange',
            name='pgh_obj',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='history', to='inventory.allianceagreement'),
        ),
        migrations.AddField(
            model_name='allianceagreementchange',
            name='supplier',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', related_query_name='+', to='inventory.supplier'),
        ),
        migrations.AddField(
            model_name='allianceentry',
            name='keeper',
            field=models.ForeignKey(help_text='The lead hospital (or the alliance SPD centre) that keeps the alliance catalog.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='inventory.hospital', verbose_name='kept by (维护医院)'),
        ),
        migrations.AddField(
            model_name='allianceentry',
            name='manufacturer',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='inventory.manufacturer'),
        ),
        migrations.AddField(
            model_name='allianceentry',
            name='registration_certificate',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='inventory.certificate'),
        ),
        migrations.AddField(
            model_name='allianceagreementchange',
            name='entry',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', related_query_name='+', to='inventory.allianceentry'),
        ),
        migrations.AddField(
            model_name='allianceagreement',
            name='entry',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='agreements', to='inventory.allianceentry'),
        ),
        migrations.AddField(
            model_name='product',
            name='alliance_entry',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='member_products', to='inventory.allianceentry', verbose_name='alliance catalog entry'),
        ),
        migrations.AddField(
            model_name='productchange',
            name='alliance_entry',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', related_query_name='+', to='inventory.allianceentry', verbose_name='alliance catalog entry'),
        ),
        migrations.AddField(
            model_name='allianceentrychange',
            name='keeper',
            field=models.ForeignKey(db_constraint=False, help_text='The lead hospital (or the alliance SPD centre) that keeps the alliance catalog.', on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', related_query_name='+', to='inventory.hospital', verbose_name='kept by (维护医院)'),
        ),
        migrations.AddField(
            model_name='allianceentrychange',
            name='manufacturer',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', related_query_name='+', to='inventory.manufacturer'),
        ),
        migrations.AddField(
            model_name='allianceentrychange',
            name='pgh_obj',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='history', to='inventory.allianceentry'),
        ),
        migrations.AddField(
            model_name='allianceentrychange',
            name='registration_certificate',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', related_query_name='+', to='inventory.certificate'),
        ),
        migrations.AddField(
            model_name='alliancepricechange',
            name='agreement',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='inventory.allianceagreement'),
        ),
        migrations.AddField(
            model_name='alliancepricechange',
            name='approved_by',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='alliancepricechange',
            name='entry',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='price_changes', to='inventory.allianceentry'),
        ),
        migrations.AddField(
            model_name='alliancepricechange',
            name='previous',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='inventory.allianceagreement'),
        ),
        migrations.AddField(
            model_name='alliancepricechange',
            name='recorded_by',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name='allianceentry',
            constraint=models.UniqueConstraint(fields=('alliance', 'code'), name='alliance_entry_code'),
        ),
        migrations.AddConstraint(
            model_name='allianceentry',
            constraint=models.UniqueConstraint(fields=('alliance', 'udi_di'), name='alliance_entry_di'),
        ),
        migrations.AddConstraint(
            model_name='allianceentry',
            constraint=models.CheckConstraint(condition=models.Q(('alliance', ''), _negated=True), name='alliance_entry_has_alliance'),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='allianceentry',
            trigger=pgtrigger.compiler.Trigger(name='history_create', sql=pgtrigger.compiler.UpsertTriggerSql(func='INSERT INTO "inventory_allianceentrychange" ("alliance", "category", "code", "id", "is_active", "is_high_value", "keeper_id", "manufacturer_id", "name", "nhsa_code", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "registration_certificate_id", "specification", "tracking", "udi_di", "unit_of_measure") VALUES (NEW."alliance", NEW."category", NEW."code", NEW."id", NEW."is_active", NEW."is_high_value", NEW."keeper_id", NEW."manufacturer_id", NEW."name", NEW."nhsa_code", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, NOW(), \'create\', NEW."id", NEW."registration_certificate_id", NEW."specification", NEW."tracking", NEW."udi_di", NEW."unit_of_measure"); RETURN NULL;', hash='a36acfbd57cb5aa36ab55daf5f489d94215b9fcf', operation='INSERT', pgid='pgtrigger_history_create_00137', table='inventory_allianceentry', when='AFTER')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='allianceentry',
            trigger=pgtrigger.compiler.Trigger(name='history_update', sql=pgtrigger.compiler.UpsertTriggerSql(condition='WHEN (OLD.* IS DISTINCT FROM NEW.*)', func='INSERT INTO "inventory_allianceentrychange" ("alliance", "category", "code", "id", "is_active", "is_high_value", "keeper_id", "manufacturer_id", "name", "nhsa_code", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "registration_certificate_id", "specification", "tracking", "udi_di", "unit_of_measure") VALUES (NEW."alliance", NEW."category", NEW."code", NEW."id", NEW."is_active", NEW."is_high_value", NEW."keeper_id", NEW."manufacturer_id", NEW."name", NEW."nhsa_code", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, NOW(), \'update\', NEW."id", NEW."registration_certificate_id", NEW."specification", NEW."tracking", NEW."udi_di", NEW."unit_of_measure"); RETURN NULL;', hash='b7e2fe895038b76b8bd50f50c77aa92694870f03', operation='UPDATE', pgid='pgtrigger_history_update_a7880', table='inventory_allianceentry', when='AFTER')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='allianceentry',
            trigger=pgtrigger.compiler.Trigger(name='history_delete', sql=pgtrigger.compiler.UpsertTriggerSql(func='INSERT INTO "inventory_allianceentrychange" ("alliance", "category", "code", "id", "is_active", "is_high_value", "keeper_id", "manufacturer_id", "name", "nhsa_code", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "registration_certificate_id", "specification", "tracking", "udi_di", "unit_of_measure") VALUES (OLD."alliance", OLD."category", OLD."code", OLD."id", OLD."is_active", OLD."is_high_value", OLD."keeper_id", OLD."manufacturer_id", OLD."name", OLD."nhsa_code", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, NOW(), \'delete\', OLD."id", OLD."registration_certificate_id", OLD."specification", OLD."tracking", OLD."udi_di", OLD."unit_of_measure"); RETURN NULL;', hash='05c5551f5127af1b21b7cd0ea92894edffadbbf2', operation='DELETE', pgid='pgtrigger_history_delete_67c7e', table='inventory_allianceentry', when='AFTER')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='allianceagreementchange',
            trigger=pgtrigger.compiler.Trigger(name='append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;", hash='80f01cafafbce0d697e9743047aedec836c50fed', operation='UPDATE OR DELETE', pgid='pgtrigger_append_only_9ecef', table='inventory_allianceagreementchange', when='BEFORE')),
        ),
        migrations.AddConstraint(
            model_name='allianceagreement',
            constraint=models.CheckConstraint(condition=models.Q(('unit_price__gte', 0)), name='alliance_agreement_price_not_negative'),
        ),
        migrations.AddConstraint(
            model_name='allianceagreement',
            constraint=models.CheckConstraint(condition=models.Q(('valid_to__gte', models.F('valid_from'))), name='alliance_agreement_dates'),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='allianceagreement',
            trigger=pgtrigger.compiler.Trigger(name='history_create', sql=pgtrigger.compiler.UpsertTriggerSql(func='INSERT INTO "inventory_allianceagreementchange" ("entry_id", "id", "is_active", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "platform_reference", "supplier_id", "unit_price", "valid_from", "valid_to", "vbp_contract") VALUES (NEW."entry_id", NEW."id", NEW."is_active", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, NOW(), \'create\', NEW."id", NEW."platform_reference", NEW."supplier_id", NEW."unit_price", NEW."valid_from", NEW."valid_to", NEW."vbp_contract"); RETURN NULL;', hash='2f6db7e55e5f37f41646c8c8ab08689869303584', operation='INSERT', pgid='pgtrigger_history_create_eb40f', table='inventory_allianceagreement', when='AFTER')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='allianceagreement',
            trigger=pgtrigger.compiler.Trigger(name='history_update', sql=pgtrigger.compiler.UpsertTriggerSql(condition='WHEN (OLD.* IS DISTINCT FROM NEW.*)', func='INSERT INTO "inventory_allianceagreementchange" ("entry_id", "id", "is_active", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "platform_reference", "supplier_id", "unit_price", "valid_from", "valid_to", "vbp_contract") VALUES (NEW."entry_id", NEW."id", NEW."is_active", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, NOW(), \'update\', NEW."id", NEW."platform_reference", NEW."supplier_id", NEW."unit_price", NEW."valid_from", NEW."valid_to", NEW."vbp_contract"); RETURN NULL;', hash='a60639c1740dc0c3cba2eceb79dbc31d9e8b36cb', operation='UPDATE', pgid='pgtrigger_history_update_05d27', table='inventory_allianceagreement', when='AFTER')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='allianceagreement',
            trigger=pgtrigger.compiler.Trigger(name='history_delete', sql=pgtrigger.compiler.UpsertTriggerSql(func='INSERT INTO "inventory_allianceagreementchange" ("entry_id", "id", "is_active", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "platform_reference", "supplier_id", "unit_price", "valid_from", "valid_to", "vbp_contract") VALUES (OLD."entry_id", OLD."id", OLD."is_active", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, NOW(), \'delete\', OLD."id", OLD."platform_reference", OLD."supplier_id", OLD."unit_price", OLD."valid_from", OLD."valid_to", OLD."vbp_contract"); RETURN NULL;', hash='23c6a764dddb73e5d9b8f81143f7a78913216cbd', operation='DELETE', pgid='pgtrigger_history_delete_3536a', table='inventory_allianceagreement', when='AFTER')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='allianceentrychange',
            trigger=pgtrigger.compiler.Trigger(name='append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;", hash='a77b8456469abef1df53ebc3f72f17031f3f5627', operation='UPDATE OR DELETE', pgid='pgtrigger_append_only_7d277', table='inventory_allianceentrychange', when='BEFORE')),
        ),
        migrations.RunPython(create_roles, drop_roles),
        migrations.RunPython(create_lookup_indexes, drop_lookup_indexes),
    ]

"""Processing (加工): pack/kit/set definitions, packs and their members, label prints; the unit
statuses, movement kinds, location kind and alert kind they need; the hourly set-partner scan."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from inventory.migrations._schedule import schedule_functions

SCHEDULE = [("SPD set partner scan", "set_partner_scan", ("crontab", "17", "*"))]
create_schedule, delete_schedule = schedule_functions(SCHEDULE)


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0022_picking_dispatch_and_receipt"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AlterField(
            model_name='alert',
            name='kind',
            field=models.CharField(choices=[('NEAR_EXPIRY', 'Near expiry (近效期)'), ('EXPIRED', 'Expired and locked (过期)'), ('CERTIFICATE_EXPIRING', 'Certificate expiring (证照将到期)'), ('CERTIFICATE_EXPIRED', 'Certificate expired (证照过期)'), ('RETURN_OVERDUE', 'Taken and overdue for return (定时回库预警)'), ('DEVICE_OFFLINE', 'Device offline (设备离线)'), ('UNKNOWN_TAG', 'Unknown tag in a cabinet'), ('MISPLACED_TAG', 'Misplaced unit in a cabinet'), ('BELOW_PAR', 'Stock below par level (低于基数)'), ('HIS_DELIVERY_FAILING', 'HIS charge delivery failing'), ('MQTT_BRIDGE_DOWN', 'MQTT cabinet bridge down'), ('DEVICE_CLOCK_SKEW', 'Device clock wrong (设备时钟偏差)'), ('CABINET_READ_SUSPECT', 'Cabinet read suspect: reader fault? (读取异常)'), ('CABINET_STALE_CLOSE', 'Cabinet door close arrived out of date (过期关门事件)'), ('SET_PARTNER_MISSING', 'Set component used without its partner (配套组件缺用)')], max_length=32, verbose_name='kind'),
        ),
        migrations.AlterField(
            model_name='location',
            name='kind',
            field=models.CharField(choices=[('CENTRAL_WAREHOUSE', 'Central warehouse (中心库)'), ('DEPARTMENT_STORE', 'Department store (二级库)'), ('SMART_CABINET', 'Smart cabinet (智能柜)'), ('OPERATING_ROOM', 'Operating room'), ('QUARANTINE', 'Quarantine'), ('IN_TRANSIT', 'In transit'), ('PROCESSING_STATION', 'Processing station (加工间)')], max_length=32, verbose_name='kind'),
        ),
        migrations.AlterField(
            model_name='locationchange',
            name='kind',
            field=models.CharField(choices=[('CENTRAL_WAREHOUSE', 'Central warehouse (中心库)'), ('DEPARTMENT_STORE', 'Department store (二级库)'), ('SMART_CABINET', 'Smart cabinet (智能柜)'), ('OPERATING_ROOM', 'Operating room'), ('QUARANTINE', 'Quarantine'), ('IN_TRANSIT', 'In transit'), ('PROCESSING_STATION', 'Processing station (加工间)')], max_length=32, verbose_name='kind'),
        ),
        migrations.AlterField(
            model_name='movement',
            name='document_type',
            field=models.CharField(choices=[('DELIVERY_NOTE', 'Delivery note'), ('STOCK_ORDER', 'Stock order'), ('CABINET_SESSION', 'Cabinet session'), ('CONSUMPTION', 'Consumption'), ('ALERT', 'Alert (expiry lock)'), ('PACK', 'Pack (加工包)')], max_length=24, verbose_name='source document type'),
        ),
        migrations.AlterField(
            model_name='movement',
            name='from_status',
            field=models.CharField(blank=True, choices=[('RECEIVED', 'Received'), ('ACCEPTED', 'Accepted'), ('REJECTED', 'Rejected'), ('IN_STOCK', 'In stock'), ('IN_CABINET', 'In smart cabinet'), ('TAKEN', 'Taken from cabinet'), ('CONSUMED', 'Consumed'), ('RETURNED_TO_SUPPLIER', 'Returned to supplier'), ('SCRAPPED', 'Scrapped'), ('EXPIRED', 'Expired (locked)'), ('IN_PACK', 'In a pack (已组包)'), ('UNPACKED', 'Pack emptied (包已拆空)')], max_length=24, verbose_name='status before'),
        ),
        migrations.AlterField(
            model_name='movement',
            name='kind',
            field=models.CharField(choices=[('RECEIPT', 'Receipt (入库)'), ('PUTAWAY', 'Put away (上架)'), ('TRANSFER', 'Transfer (移库)'), ('CABINET_TAKE', 'Taken from cabinet'), ('CABINET_RETURN', 'Returned to cabinet'), ('CONSUME', 'Consumed (使用)'), ('UNCONSUME', 'Consumption refunded (退费)'), ('RETURN_TO_SUPPLIER', 'Returned to supplier (退货)'), ('SCRAP', 'Scrapped (报损)'), ('EXPIRE', 'Expired and locked'), ('ADJUSTMENT', 'Stocktake adjustment (盘点调整)'), ('OWNER_CHANGE', 'Change of owner (寄售转自有)'), ('QUARANTINE_RELEASE', 'Released from quarantine (解除隔离)'), ('PACK_IN', 'Into a pack (组包)'), ('PACK_OUT', 'Out of a pack (拆包)'), ('PACK_MADE', 'Pack assembled (加工成包)'), ('PACK_EMPTIED', 'Pack emptied (包已拆空)')], max_length=24, verbose_name='kind'),
        ),
        migrations.AlterField(
            model_name='movement',
            name='to_status',
            field=models.CharField(blank=True, choices=[('RECEIVED', 'Received'), ('ACCEPTED', 'Accepted'), ('REJECTED', 'Rejected'), ('IN_STOCK', 'In stock'), ('IN_CABINET', 'In smart cabinet'), ('TAKEN', 'Taken from cabinet'), ('CONSUMED', 'Consumed'), ('RETURNED_TO_SUPPLIER', 'Returned to supplier'), ('SCRAPPED', 'Scrapped'), ('EXPIRED', 'Expired (locked)'), ('IN_PACK', 'In a pack (已组包)'), ('UNPACKED', 'Pack emptied (包已拆空)')], max_length=24, verbose_name='status after'),
        ),
        migrations.AlterField(
            model_name='notificationrule',
            name='kind',
            field=models.CharField(blank=True, choices=[('NEAR_EXPIRY', 'Near expiry (近效期)'), ('EXPIRED', 'Expired and locked (过期)'), ('CERTIFICATE_EXPIRING', 'Certificate expiring (证照将到期)'), ('CERTIFICATE_EXPIRED', 'Certificate expired (证照过期)'), ('RETURN_OVERDUE', 'Taken and overdue for return (定时回库预警)'), ('DEVICE_OFFLINE', 'Device offline (设备离线)'), ('UNKNOWN_TAG', 'Unknown tag in a cabinet'), ('MISPLACED_TAG', 'Misplaced unit in a cabinet'), ('BELOW_PAR', 'Stock below par level (低于基数)'), ('HIS_DELIVERY_FAILING', 'HIS charge delivery failing'), ('MQTT_BRIDGE_DOWN', 'MQTT cabinet bridge down'), ('DEVICE_CLOCK_SKEW', 'Device clock wrong (设备时钟偏差)'), ('CABINET_READ_SUSPECT', 'Cabinet read suspect: reader fault? (读取异常)'), ('CABINET_STALE_CLOSE', 'Cabinet door close arrived out of date (过期关门事件)'), ('SET_PARTNER_MISSING', 'Set component used without its partner (配套组件缺用)')], help_text='Empty: every kind of alert', max_length=32, verbose_name='alert kind'),
        ),
        migrations.AlterField(
            model_name='unit',
            name='status',
            field=models.CharField(choices=[('RECEIVED', 'Received'), ('ACCEPTED', 'Accepted'), ('REJECTED', 'Rejected'), ('IN_STOCK', 'In stock'), ('IN_CABINET', 'In smart cabinet'), ('TAKEN', 'Taken from cabinet'), ('CONSUMED', 'Consumed'), ('RETURNED_TO_SUPPLIER', 'Returned to supplier'), ('SCRAPPED', 'Scrapped'), ('EXPIRED', 'Expired (locked)'), ('IN_PACK', 'In a pack (已组包)'), ('UNPACKED', 'Pack emptied (包已拆空)')], max_length=24, verbose_name='status'),
        ),
        migrations.CreateModel(
            name='PackDefinition',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('code', models.CharField(max_length=32, verbose_name='code')),
                ('version', models.PositiveIntegerField(verbose_name='version')),
                ('name', models.CharField(max_length=200, verbose_name='name')),
                ('kind', models.CharField(choices=[('PACK', 'Fixed-quantity pack (定数包)'), ('KIT', 'Procedure kit (手术包)'), ('SET', 'Component set (配套组件)')], max_length=8, verbose_name='kind')),
                ('is_current', models.BooleanField(default=True, verbose_name='current version')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='created at')),
                ('created_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('hospital', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='pack_definitions', to='inventory.hospital')),
                ('pack_product', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='pack_definitions', to='inventory.product', verbose_name='pack product')),
            ],
            options={
                'verbose_name': 'pack definition',
                'ordering': ['hospital', 'code', '-version'],
            },
        ),
        migrations.CreateModel(
            name='Pack',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('assembled_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='assembled at')),
                ('emptied_at', models.DateTimeField(blank=True, null=True, verbose_name='emptied at')),
                ('assembled_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('hospital', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='packs', to='inventory.hospital')),
                ('station', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='inventory.location')),
                ('unit', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='pack', to='inventory.unit')),
                ('definition', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='packs', to='inventory.packdefinition')),
            ],
            options={
                'verbose_name': 'pack',
                'ordering': ['-id'],
            },
        ),
        migrations.CreateModel(
            name='PackDefinitionLine',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('quantity', models.PositiveIntegerField(verbose_name='quantity')),
                ('is_optional', models.BooleanField(default=False, verbose_name='optional')),
                ('definition', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='lines', to='inventory.packdefinition')),
                ('product', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='inventory.product')),
            ],
            options={
                'verbose_name': 'pack definition line',
                'ordering': ['definition', 'id'],
            },
        ),
        migrations.CreateModel(
            name='PackMember',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('lot', models.CharField(blank=True, max_length=64, verbose_name='lot')),
                ('expiry', models.DateField(blank=True, null=True, verbose_name='expiry')),
                ('quantity', models.PositiveIntegerField(default=1, verbose_name='quantity')),
                ('unit_cost', models.DecimalField(decimal_places=2, max_digits=12, verbose_name='unit cost')),
                ('layers', models.JSONField(blank=True, default=list, verbose_name='cost layers')),
                ('state', models.CharField(choices=[('LIVE', 'In the pack'), ('USED', 'Used on a patient'), ('RETURNED', 'Returned to stock (拆包)')], default='LIVE', max_length=8, verbose_name='state')),
                ('consumption', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='inventory.consumption')),
                ('into_movement', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='inventory.movement')),
                ('out_movement', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='inventory.movement')),
                ('pack', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='members', to='inventory.pack')),
                ('product', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='inventory.product')),
                ('unit', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='pack_memberships', to='inventory.unit')),
            ],
            options={
                'verbose_name': 'pack member',
                'ordering': ['pack', 'id'],
            },
        ),
        migrations.CreateModel(
            name='LabelPrint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('content', models.CharField(max_length=200, verbose_name='encoded GS1 data')),
                ('symbology', models.CharField(choices=[('DATAMATRIX', 'GS1 DataMatrix'), ('GS1_128', 'GS1-128')], max_length=12, verbose_name='symbology')),
                ('copies', models.PositiveIntegerField(default=1, verbose_name='copies')),
                ('is_reprint', models.BooleanField(default=False, verbose_name='reprint')),
                ('reason', models.CharField(blank=True, max_length=200, verbose_name='reason')),
                ('printed_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='printed at')),
                ('hospital', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='inventory.hospital')),
                ('lot_balance', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='inventory.lotbalance')),
                ('printed_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('unit', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='inventory.unit')),
            ],
            options={
                'verbose_name': 'label print',
                'ordering': ['-printed_at', '-id'],
                'constraints': [models.CheckConstraint(condition=models.Q(models.Q(('lot_balance__isnull', True), ('unit__isnull', False)), models.Q(('lot_balance__isnull', False), ('unit__isnull', True)), _connector='OR'), name='label_for_a_unit_or_a_lot')],
            },
        ),
        migrations.AddConstraint(
            model_name='packdefinition',
            constraint=models.UniqueConstraint(fields=('hospital', 'code', 'version'), name='pack_definition_version_unique'),
        ),
        migrations.AddConstraint(
            model_name='packdefinition',
            constraint=models.UniqueConstraint(condition=models.Q(('is_current', True)), fields=('hospital', 'code'), name='one_current_pack_definition'),
        ),
        migrations.AddConstraint(
            model_name='packdefinitionline',
            constraint=models.UniqueConstraint(fields=('definition', 'product'), name='one_line_per_product_in_definition'),
        ),
        migrations.AddConstraint(
            model_name='packdefinitionline',
            constraint=models.CheckConstraint(condition=models.Q(('quantity__gt', 0)), name='pack_line_quantity_positive'),
        ),
        migrations.AddConstraint(
            model_name='packmember',
            constraint=models.UniqueConstraint(condition=models.Q(('state', 'LIVE')), fields=('unit',), name='unit_live_in_one_pack'),
        ),
        migrations.AddConstraint(
            model_name='packmember',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('quantity', 1), ('unit__isnull', False)), models.Q(('lot__gt', ''), ('unit__isnull', True)), _connector='OR'), name='pack_member_is_unit_or_lot'),
        ),
        migrations.RunPython(create_schedule, delete_schedule),
    ]

"""moto for `make bench`: moto_server.py with two shortcuts that keep moto's answers but not
its cost in proportion to the table's size.

- TransactWriteItems: stock moto deep-copies the whole table before every transaction (to
  restore it if the transaction is cancelled), about 45 us per item, so a 10,000-review backlog,
  one transaction per review, would take hours. Here a transaction backs up only the items it
  touches and puts exactly those back when it is cancelled.
- Query on the table's own key: stock moto lists and sorts every item of the table and then
  keeps the partition's (about 25 ms a query at 2,000 items); here it lists the partition only,
  as DynamoDB does.
"""

import copy
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import moto.dynamodb.models as dynamodb_models  # noqa: E402
from moto.dynamodb.models import DynamoDBBackend  # noqa: E402
from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: E402
from moto.dynamodb.models.table import Table  # noqa: E402

import moto_server  # noqa: E402

_inside = threading.local()


class _CopyWithoutTableBackups:
    """`copy` for moto.dynamodb.models: inside a transaction, a Table is not deep-copied (the
    wrapper below keeps the touched items instead); everything else is copied as before."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, Table) and getattr(_inside, "transaction", False):
            return value
        return copy.deepcopy(value, memo)


def _key_values(table, op_type, op):
    attrs = op.get("Item") if op_type == "Put" else op.get("Key")
    if not attrs or table.hash_key_attr not in attrs:
        return None
    hash_value = DynamoType(attrs[table.hash_key_attr])
    range_value = None
    if table.range_key_attr is not None:
        if table.range_key_attr not in attrs:
            return None
        range_value = DynamoType(attrs[table.range_key_attr])
    return hash_value, range_value


def _restore(table, hash_value, range_value, item):
    if range_value is None:
        if item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item
    elif item is None:
        table.items[hash_value].pop(range_value, None)
    else:
        table.items[hash_value][range_value] = item


_stock_transact_write_items = DynamoDBBackend.transact_write_items


def _transact_write_items(self, transact_items):
    backups = []
    for entry in transact_items:
        for op_type, op in entry.items():
            table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            if table is None:
                continue
            key = _key_values(table, op_type, op)
            if key is None:
                continue
            current = table.get_item(*key) if key[1] is not None else table.get_item(key[0])
            backups.append((table, key[0], key[1], copy.deepcopy(current)))
    _inside.transaction = True
    try:
        return _stock_transact_write_items(self, transact_items)
    except Exception:
        for table, hash_value, range_value, item in reversed(backups):
            _restore(table, hash_value, range_value, item)
        raise
    finally:
        _inside.transaction = False


_stock_all_items = Table.all_items
_stock_query = Table.query


def _all_items(self):
    partition = getattr(_inside, "partition", None)
    if partition is None or partition[0] is not self:
        return _stock_all_items(self)
    hash_set = self.items.get(partition[1]) if partition[1] in self.items else None
    if hash_set is None:
        return []
    items = list(hash_set.values()) if self.range_key_attr else [hash_set]
    return sorted(
        items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key
    )


def _query(self, hash_key, *args, **kwargs):
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    if index_name is not None or hash_key is None:
        return _stock_query(self, hash_key, *args, **kwargs)
    _inside.partition = (self, hash_key)
    try:
        return _stock_query(self, hash_key, *args, **kwargs)
    finally:
        _inside.partition = None


dynamodb_models.copy = _CopyWithoutTableBackups()
DynamoDBBackend.transact_write_items = _transact_write_items
Table.all_items = _all_items
Table.query = _query

if __name__ == "__main__":
    moto_server.main()

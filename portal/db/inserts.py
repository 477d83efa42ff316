"""New rows of several tables in one statement: one round trip instead of one per row.

A booking writes five rows (its order and the order's audit row, the booking and its audit
row, the outbox event that tells the patient), each a statement and a round trip of its own
through `Model.save()`. On the hot path they go together:

    rows = InsertChain()
    rows.add(order)
    rows.add(OrderEvent(action="created", ...), order=order)      # order_id: order's new id
    rows.add(booking, order=order)
    rows.add(OutboxEvent(...), link=IdText("/bookings/{}/", booking))
    rows.run()                                   # every object now has its pk

`run()` sends one `WITH _row0 AS (INSERT ... RETURNING id), _row1 AS (...) SELECT ...`:
each INSERT is the one Django builds for `save()` (defaults, auto_now, JSON and time zone
adaptation), and a reference to an earlier row is a subquery on that row's RETURNING.
PostgreSQL runs them in one statement, so they are written all together or not at all, and
foreign keys (deferred to commit, as Django declares them) see every row.

Not `save()`: no pre_save/post_save signals are sent and no overridden `save()` runs, so
`add()` refuses models that have either.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import CharField, Field, Model, signals
from django.db.models.expressions import RawSQL
from django.db.models.sql import InsertQuery


@dataclass(frozen=True)
class IdText:
    """A text field holding an earlier row's new id, e.g. IdText("/bookings/{}/", booking)."""

    template: str
    row: Model

    def text(self) -> str:
        return self.template.format(self.row.pk)


class InsertChain:
    def __init__(self, using: str = DEFAULT_DB_ALIAS) -> None:
        self.using = using
        self._rows: list[tuple[Model, dict]] = []
        self._position: dict[int, int] = {}  # id(obj) -> index in _rows

    def add(self, obj: Model, **refs: Model | IdText) -> Model:
        """Queue `obj` for insertion. `refs`: foreign keys (field name -> an object added
        before) and text fields (field name -> IdText) that take an earlier row's new id."""
        model = type(obj)
        if model.save is not Model.save:
            raise TypeError(f"{model.__name__} overrides save(): save it on its own")
        if signals.pre_save.has_listeners(model) or signals.post_save.has_listeners(model):
            raise TypeError(f"{model.__name__} has save signals: save it on its own")
        if not obj._state.adding or obj.pk is not None:
            raise ValueError(f"{obj!r} is already saved")
        for value in refs.values():
            target = value.row if isinstance(value, IdText) else value
            if id(target) not in self._position:
                raise ValueError(f"{target!r} was not added to this chain before {obj!r}")
        self._position[id(obj)] = len(self._rows)
        self._rows.append((obj, refs))
        return obj

    def _id_sql(self, target: Model) -> str:
        return f'(SELECT "{target._meta.pk.column}" FROM _row{self._position[id(target)]})'

    def run(self) -> None:
        """Insert every queued row in one statement; each object gets its pk."""
        if not self._rows:
            return
        connection = connections[self.using]
        # The statement's text depends only on the rows' models and references: built by
        # Django's compiler the first time, then reused with fresh parameters (what save()
        # would bind: pre_save(), then get_db_prep_save()).
        shape = (self.using, *((type(obj), tuple(
            (name, isinstance(v, IdText), self._position[id(v.row if isinstance(v, IdText)
                                                            else v)])
            for name, v in refs.items())) for obj, refs in self._rows))
        cached = _statements.get(shape)
        params = self._params(cached[1], connection) if cached else None
        if params is None:
            sql, params, plain = self._compile(connection)
            if plain:
                if len(_statements) > 100:
                    _statements.clear()
                _statements[shape] = (sql, [self._fields(obj) for obj, _refs in self._rows])
        else:
            sql = cached[0]
        with connection.cursor() as cur:
            cur.execute(sql, params)
            row = cur.fetchone()
        for (obj, _refs), pk in zip(self._rows, row, strict=True):
            obj.pk = pk
            obj._state.adding, obj._state.db = False, self.using
        for obj, refs in self._rows:  # the real values in place of any subqueries
            for name, value in refs.items():
                setattr(obj, name, value.text() if isinstance(value, IdText) else value)
        self._rows, self._position = [], {}

    @staticmethod
    def _fields(obj: Model) -> list[Field]:
        meta = obj._meta
        return [f for f in meta.local_concrete_fields
                if not f.generated and f is not meta.auto_field]

    def _compile(self, connection) -> tuple[str, list, bool]:
        """The statement from Django's insert compiler; `plain` if every value is a plain
        parameter (no database defaults, custom placeholders or expressions) besides the
        references, so that `_params()` can bind it again."""
        ctes, params, plain = [], [], True
        for i, (obj, refs) in enumerate(self._rows):
            for name, value in refs.items():
                if isinstance(value, IdText):
                    before, after = value.template.split("{}")
                    setattr(obj, name, RawSQL(
                        f"(%s::text || {self._id_sql(value.row)}::text || %s::text)",
                        [before, after], output_field=CharField()))
                else:
                    field = obj._meta.get_field(name)
                    setattr(obj, field.attname, RawSQL(self._id_sql(value), [],
                                                       output_field=field.target_field))
            fields = self._fields(obj)
            ref_names = set(refs)
            plain = plain and not any(
                f.has_db_default() or hasattr(f, "get_placeholder_sql")
                or (f.name not in ref_names
                    and hasattr(getattr(obj, f.attname), "resolve_expression"))
                for f in fields)
            query = InsertQuery(type(obj))
            query.insert_values(fields, [obj])
            compiler = query.get_compiler(using=self.using)
            compiler.returning_fields = [obj._meta.pk]
            [(sql, sql_params)] = compiler.as_sql()
            ctes.append(f"_row{i} AS ({sql})")
            params.extend(sql_params)
        ids = ", ".join(self._id_sql(obj) for obj, _refs in self._rows)
        sql = f"WITH {', '.join(ctes)} SELECT {ids}"
        # Cross-check: binding the values as _params() does gives as many parameters.
        plain = plain and sql.count("%s") == len(params)
        return sql, params, plain

    def _params(self, fields_per_row: list[list[Field]], connection) -> list | None:
        """The parameters of a cached statement, in its order; None if a value is an
        expression this time (the statement is then compiled afresh)."""
        params = []
        for (obj, refs), fields in zip(self._rows, fields_per_row, strict=True):
            for f in fields:
                ref = refs.get(f.name)
                if ref is None:
                    value = f.pre_save(obj, add=True)
                    if hasattr(value, "resolve_expression"):
                        return None
                    params.append(f.get_db_prep_save(value, connection=connection))
                elif isinstance(ref, IdText):
                    params.extend(ref.template.split("{}"))
        return params


# (alias, (model, references) per row) -> (statement, fields per row): a handful of shapes.
_statements: dict[tuple, tuple[str, list[list[Field]]]] = {}

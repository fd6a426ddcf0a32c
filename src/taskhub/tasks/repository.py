"""Every query about tasks. Each starts from the scope `access.scope` gives: what the caller may
see, or may write (the roles repeated in the WHERE clause of every write)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Executable,
    Integer,
    Select,
    SmallInteger,
    Text,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from taskhub import pagination
from taskhub.access.roles import Action
from taskhub.access.scope import (
    CALLER,
    EVERY_OWN_TASK,
    OWN_MEMBERSHIP,
    OWN_TASK,
    VISIBLE_TASK,
    may_create_in,
    task_scope,
)
from taskhub.db.runner import IntegrityViolation, Queries, columns_of, selecting
from taskhub.tables import (
    SEARCH_SEPARATOR,
    IdempotencyRecord,
    Project,
    ProjectMember,
    Task,
    TaskQuota,
    TaskStatus,
    User,
)
from taskhub.tasks.schemas import TaskRecord

AssigneeFilter = Literal["me", "none"] | uuid.UUID | None


@dataclass(frozen=True, slots=True)
class TaskFilters:
    statuses: tuple[str, ...] = ()
    priorities: tuple[int, ...] = ()
    due_before: datetime | None = None
    due_after: datetime | None = None
    search: str | None = None  # already case-folded
    # Which scopes: the caller's personal tasks, and all their projects or only these ones.
    personal: bool = True
    all_projects: bool = True
    project_ids: tuple[uuid.UUID, ...] = ()
    assignee: AssigneeFilter = None
    label_keys: tuple[str, ...] = ()  # case-folded; a task must carry every one


@dataclass(frozen=True, slots=True)
class TaskChanges:
    """A PATCH, already validated: only the fields the client sent are set (`sent`)."""

    sent: frozenset[str]
    values: dict[str, Any]  # column values: title, description, status, priority (rank), ...
    title_search: str | None = None  # the folded title, when the title changes
    description_search: str | None = None  # the folded description, when it changes


_TASK = columns_of(TaskRecord, Task)
_THIS_TASK = Task.id == bindparam("task_id")
_GET_VISIBLE = select(*_TASK).where(_THIS_TASK, VISIBLE_TASK)


async def get_visible(
    db: Queries, *, caller_id: uuid.UUID, task_id: uuid.UUID
) -> TaskRecord | None:
    return await db.record(_GET_VISIBLE, {"caller_id": caller_id, "task_id": task_id}, TaskRecord)


_WRITTEN = (*_TASK, Task.owner_id, Task.search_text, Task.label_keys)
_COLUMN_TYPES = {column.key: column.type for column in _WRITTEN}


def _bounded_count(scope: ColumnElement[bool]) -> Any:
    """How many tasks `scope` holds, counted no further than the quota: a count's cost never grows
    past what the limit allows."""
    capped = select(Task.id).where(scope).limit(bindparam("quota", type_=Integer())).subquery()
    return select(func.count()).select_from(capped).scalar_subquery()


# Slots of room per scope (TaskQuota, ADR 0014). A create takes room from its connection's slot,
# so creates of one scope on different connections do not queue on one row, each holding it
# until its commit is flushed. SQLite has a single writer anyway: one slot.
QUOTA_SLOTS = 16


def quota_slots(dialect: str) -> int:
    return QUOTA_SLOTS if dialect == "postgresql" else 1


class _connection_slot(FunctionElement[int]):  # noqa: N801 - a SQL function's name
    """The slot of room this connection takes from: a pool's connections have distinct backend
    pids, and so mostly distinct slots."""

    type = SmallInteger()
    inherit_cache = True


@compiles(_connection_slot)
def _connection_slot_default(element: _connection_slot, compiler: SQLCompiler, **kw: Any) -> str:
    return "0"


@compiles(_connection_slot, "postgresql")
def _connection_slot_postgresql(element: _connection_slot, compiler: SQLCompiler, **kw: Any) -> str:
    return f"mod(pg_backend_pid(), {QUOTA_SLOTS})"


# Named apart from task_quota's columns: SQLAlchemy would read such a parameter as a SET value.
_SCOPE = bindparam("in_scope", type_=TaskQuota.scope_id.type)


def _create_conditions(*, in_project: bool, assigned: bool, project: str) -> list[Any]:
    """What a create needs besides room: in a project (the parameter named `project`), what
    `access.scope.may_create_in` says."""
    if not in_project:
        return []
    assignee = bindparam("assignee_id", type_=Task.assignee_id.type) if assigned else None
    return may_create_in(bindparam(project, type_=Task.project_id.type), assignee=assignee)


def _scope_held(*, in_project: bool) -> Any:
    """The scope's own row (the project, or the user for personal tasks), held FOR KEY SHARE
    before any slot is: deleting the project or the account locks that row first and then
    cascades to the slots, so a write holding a slot never waits for a deletion that waits for
    it. (The new task's foreign key takes the same lock anyway, only later.)"""
    table: Any = Project if in_project else User
    held = select(literal(1)).select_from(table).where(table.id == _SCOPE)
    return held.with_for_update(read=True, key_share=True).exists()


@lru_cache(maxsize=8)
def _take_room_statement(*, in_project: bool, assigned: bool, rights: bool = True) -> Any:
    """One unit of the scope's room from this connection's slot, only if the create's other
    conditions hold too (`rights`): a refused create takes nothing."""
    conditions = (
        _create_conditions(in_project=in_project, assigned=assigned, project="in_scope")
        if rights
        else []
    )
    return (
        update(TaskQuota)
        .where(
            _scope_held(in_project=in_project),
            TaskQuota.scope_id == _SCOPE,
            TaskQuota.slot == _connection_slot(),
            TaskQuota.room > 0,
            *conditions,
        )
        .values(room=TaskQuota.room - 1)
        .returning(TaskQuota.scope_id)
    )


@lru_cache(maxsize=8)
def _insert_statement(*, in_project: bool, assigned: bool, takes_room: bool) -> Executable:
    """One INSERT ... SELECT ... RETURNING: the row is written only if its conditions hold, in
    the same statement. `takes_room` (PostgreSQL): the conditions are the UPDATE of a unit of the
    scope's room in a data-modifying CTE, and the row is selected from what it updated; the slot
    is locked only while this one statement commits."""
    names = [column.key for column in _WRITTEN]
    row = select(*(bindparam(name, type_=_COLUMN_TYPES[name]) for name in names))
    if takes_room:
        took = _take_room_statement(in_project=in_project, assigned=assigned).cte("took")
        row = row.select_from(took)
    else:
        row = row.where(
            *_create_conditions(in_project=in_project, assigned=assigned, project="project_id")
        )
    return insert(Task).from_select(names, row).returning(*_TASK)


async def insert_task(
    db: Queries, *, caller_id: uuid.UUID, values: dict[str, Any], take_room: bool
) -> TaskRecord | None:
    """Insert one task (every written column given) and return it; None when a condition refused
    it (the caller's right in the project, an assignee who is not a member, or, with `take_room`,
    no room left in the connection's slot of the scope).

    On SQLite, which has no data-modifying CTE, `take_room` is a statement of its own before the
    insert: the caller runs both in one transaction."""
    in_project = values["project_id"] is not None
    assigned = values["assignee_id"] is not None
    scope = {"in_scope": values["project_id"] or caller_id, "caller_id": caller_id}
    if take_room and db.dialect != "postgresql":
        taking = _take_room_statement(in_project=in_project, assigned=assigned)
        # Only its own parameters: SQLAlchemy would set a column named by any other.
        if await db.scalar(taking, {**scope, "assignee_id": values["assignee_id"]}) is None:
            return None
        take_room = False
    statement = _insert_statement(in_project=in_project, assigned=assigned, takes_room=take_room)
    return await db.record(statement, {**values, **scope}, TaskRecord)


async def take_room(db: Queries, *, caller_id: uuid.UUID, project_id: uuid.UUID | None) -> bool:
    """One unit of room from this connection's slot of a scope (the project, or the caller's
    personal tasks), for a task moving into it: the move's transaction holds the slot until it
    commits, and has checked the caller's rights itself. False when the slot has none."""
    statement = _take_room_statement(
        in_project=project_id is not None, assigned=False, rights=False
    )
    return await db.scalar(statement, {"in_scope": project_id or caller_id}) is not None


@lru_cache(maxsize=2)
def _hold_scope_statement(*, in_project: bool) -> Any:
    return select(_scope_held(in_project=in_project))


_ADD_SLOT = (
    upsert(TaskQuota)
    .values(
        scope_id=_SCOPE,
        slot=bindparam("slot_number", type_=TaskQuota.slot.type),
        owner_id=bindparam("slot_owner", type_=TaskQuota.owner_id.type),
        project_id=bindparam("slot_project", type_=TaskQuota.project_id.type),
        room=0,
    )
    .on_conflict_do_nothing(index_elements=[TaskQuota.scope_id, TaskQuota.slot])
    .returning(TaskQuota.slot)
)
# In slot order: two recounts of a scope never hold a slot each that the other waits for.
_LOCK_SLOTS = (
    select(TaskQuota.slot)
    .where(TaskQuota.scope_id == _SCOPE)
    .order_by(TaskQuota.slot)
    .with_for_update()
)
_SHARE_ROOM = (
    update(TaskQuota)
    .where(TaskQuota.scope_id == _SCOPE)
    .values(
        room=bindparam("share", type_=Integer())
        + case((TaskQuota.slot < bindparam("extra", type_=Integer()), 1), else_=0)
    )
)


async def recount_room(
    db: Queries, *, caller_id: uuid.UUID, project_id: uuid.UUID | None, quota: int
) -> int | None:
    """How many tasks the scope holds, counted exactly (up to `quota`) with every slot of its room
    locked; below the quota, one unit is kept for the caller's write and the rest is shared out
    again. Run in the transaction that writes the task.

    Exact: a create or move that took room holds its slot until it commits, so once every slot
    is locked each of them is committed and this count (a new snapshot) sees its task; a later
    one waits and then finds the new room. The scope's own row is held first (`_scope_held`),
    then the slots are written if missing and locked in slot order. None: the scope is gone.
    """
    scope = project_id or caller_id
    hold = _hold_scope_statement(in_project=project_id is not None)
    if not await db.scalar(hold, {"in_scope": scope}):
        return None  # the project or the account is gone
    owner = None if project_id is not None else caller_id
    slots = [
        {"in_scope": scope, "slot_number": slot, "slot_owner": owner, "slot_project": project_id}
        for slot in range(quota_slots(db.dialect))
    ]
    try:
        await db.count_many(_ADD_SLOT, slots)
    except IntegrityViolation:  # SQLite: gone since it was read (the read took no lock)
        return None
    await db.execute(_LOCK_SLOTS, {"in_scope": scope})
    count = await count_in_scope(db, caller_id=caller_id, project_id=project_id, quota=quota)
    if count < quota:
        left = quota - count - 1  # one for the caller's write
        params = {"in_scope": scope, "share": left // len(slots), "extra": left % len(slots)}
        await db.execute(_SHARE_ROOM, params)
    return count


async def count_in_scope(
    db: Queries, *, caller_id: uuid.UUID, project_id: uuid.UUID | None, quota: int
) -> int:
    """How many tasks a scope holds (a project's, or the caller's personal ones), up to `quota`."""
    if project_id is None:
        return int(await db.scalar(_COUNT_PERSONAL, {"caller_id": caller_id, "quota": quota}))
    return int(await db.scalar(_COUNT_IN_PROJECT, {"project_id": project_id, "quota": quota}))


_COUNT_PERSONAL = select(_bounded_count(EVERY_OWN_TASK))
_COUNT_IN_PROJECT = select(_bounded_count(Task.project_id == bindparam("project_id")))


@lru_cache(maxsize=4)
def _delete_statement(conditional: bool) -> Executable:
    where = [_THIS_TASK, task_scope(Action.WRITE_TASKS)]
    if conditional:
        where.append(Task.version == bindparam("expected"))
    return delete(Task).where(*where).returning(Task.id)


async def delete_task(
    db: Queries, *, caller_id: uuid.UUID, task_id: uuid.UUID, expected_version: int | None
) -> bool:
    """Delete if the caller may (and, with `expected_version`, if it is still that version)."""
    params: dict[str, Any] = {"caller_id": caller_id, "task_id": task_id}
    if expected_version is not None:
        params["expected"] = expected_version
    return await db.count(_delete_statement(expected_version is not None), params) > 0


async def update_task(
    db: Queries,
    *,
    caller_id: uuid.UUID,
    task_id: uuid.UUID,
    changes: TaskChanges,
    expected_version: int | None,
    now: datetime,
) -> TaskRecord | None:
    """Apply a PATCH whole, in one UPDATE ... RETURNING, if the caller may (and, with
    `expected_version`, if the task is still that version): concurrent PATCHes cannot interleave
    their fields, and `completed_at` follows the status in the same statement."""
    params: dict[str, Any] = {"caller_id": caller_id, "task_id": task_id, "now": now}
    params.update({f"new_{name}": value for name, value in changes.values.items()})
    if changes.title_search is not None:
        params["title_search"] = changes.title_search
    if changes.description_search is not None:
        params["description_search"] = changes.description_search
    if expected_version is not None:
        params["expected"] = expected_version
    done = changes.values.get("status") == TaskStatus.DONE
    statement = _update_statement(
        frozenset(changes.values),
        done if "status" in changes.sent else None,
        expected_version is not None,
    )
    return await db.record(statement, params, TaskRecord)


class _separator_at(FunctionElement[int]):  # noqa: N801 - a SQL function's name
    """1-based position of the search separator (U+001F) in `search_text`."""

    type = Integer()
    inherit_cache = True
    name = "separator_at"


@compiles(_separator_at)
def _separator_at_sqlite(element: _separator_at, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)}, char(31))"


@compiles(_separator_at, "postgresql")
def _separator_at_postgresql(element: _separator_at, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)}, chr(31))"


@lru_cache(maxsize=128)
def _update_statement(columns: frozenset[str], done: bool | None, conditional: bool) -> Executable:
    """Built once per set of written columns (and whether the new status is `done`)."""
    values: dict[Any, Any] = {name: bindparam(f"new_{name}") for name in columns}
    values["updated_at"] = bindparam("now")
    values["version"] = Task.version + 1
    if done is True:  # into done: stamped now, unless it was done already
        values["completed_at"] = case(
            (Task.status == TaskStatus.DONE.value, Task.completed_at),
            else_=bindparam("now", type_=Task.completed_at.type),
        )
    elif done is False:
        values["completed_at"] = null()
    title_part: Any = bindparam("title_search", type_=Text())
    description_part: Any = bindparam("description_search", type_=Text())
    separator = _separator_at(Task.search_text)
    if "title" in columns and "description" not in columns:
        # The separator and the folded description behind it stay as they are.
        values["search_text"] = title_part + func.substr(Task.search_text, separator, type_=Text())
    elif "description" in columns and "title" not in columns:
        kept = func.substr(Task.search_text, 1, separator, type_=Text())
        values["search_text"] = kept + description_part
    elif "title" in columns:
        values["search_text"] = title_part + literal(SEARCH_SEPARATOR, Text()) + description_part
    where = [_THIS_TASK, task_scope(Action.WRITE_TASKS)]
    if conditional:
        where.append(Task.version == bindparam("expected"))
    return update(Task).where(*where).values(values).returning(*_TASK)


class _carries_labels(FunctionElement[bool]):  # noqa: N801 - a SQL function's name
    """The task's folded labels include every one of `label_0` ... `label_<n-1>`."""

    inherit_cache = True
    name = "carries_labels"

    def __init__(self, count: int) -> None:
        self.count = count
        super().__init__(Task.label_keys)


@compiles(_carries_labels)
def _carries_labels_sqlite(element: _carries_labels, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    wanted = ", ".join(
        compiler.process(bindparam(f"label_{i}", type_=Text()), **kw) for i in range(element.count)
    )
    # Built from compiled column and parameter names only; the labels themselves are bound.
    distinct = f"SELECT count(DISTINCT value) FROM json_each({column}) WHERE value IN ({wanted})"  # noqa: S608
    return f"({distinct}) = {element.count}"


@compiles(_carries_labels, "postgresql")
def _carries_labels_postgresql(element: _carries_labels, compiler: SQLCompiler, **kw: Any) -> str:
    # Containment: what the GIN index on label_keys answers.
    column = compiler.process(element.clauses, **kw)
    wanted = ", ".join(
        compiler.process(bindparam(f"label_{i}", type_=Text()), **kw) for i in range(element.count)
    )
    return f"{column} @> ARRAY[{wanted}]::text[]"


@dataclass(frozen=True, slots=True)
class SortOrder:
    column: str  # created_at, updated_at, priority or due_at
    descending: bool

    @property
    def nullable(self) -> bool:
        return self.column == "due_at"


@dataclass(frozen=True, slots=True)
class _PageShape:
    """What decides a page query's SQL; the values themselves are parameters."""

    dialect: str
    order: SortOrder
    undated: bool  # the second segment of a due_at listing: tasks without a due date
    after: bool
    # Which scopes: the caller's personal tasks, and all their projects or `projects` of them.
    personal: bool
    all_projects: bool
    projects: int
    # What each of _FILTERS takes of the request, in their order (a count, a flag or a kind).
    filters: tuple[Any, ...]
    # A label filter plans each execution with its values (see _page_statement).
    custom_plan: bool


@dataclass(frozen=True, slots=True)
class _Filter:
    """One filter of the listing, written once: what it adds to a statement's shape, the
    parameters it binds, and its condition, made from its part of the shape (None: unused)."""

    shape: Callable[[TaskFilters], Any]
    params: Callable[[TaskFilters], dict[str, Any]]
    condition: Callable[[Any], ColumnElement[bool] | None]


def _any_of(field: str, column: Any, prefix: str) -> _Filter:
    """A repeatable filter: the task's `column` is one of the values sent."""
    return _Filter(
        shape=lambda filters: len(getattr(filters, field)),
        params=lambda filters: {
            f"{prefix}_{i}": value for i, value in enumerate(getattr(filters, field))
        },
        condition=lambda count: (
            column.in_([bindparam(f"{prefix}_{i}") for i in range(count)]) if count else None
        ),
    )


def _if_sent(
    field: str,
    condition: Callable[[], ColumnElement[bool]],
    bound: Callable[[Any], Any] | None = None,
) -> _Filter:
    """A filter that applies when its field is set; its parameter is named after the field."""
    return _Filter(
        shape=lambda filters: bool(getattr(filters, field)),
        params=lambda filters: (
            {field: (_same if bound is None else bound)(getattr(filters, field))}
            if getattr(filters, field)
            else {}
        ),
        condition=lambda sent: condition() if sent else None,
    )


def _same(value: Any) -> Any:
    return value


def _assignee_kind(filters: TaskFilters) -> str | None:
    assignee = filters.assignee
    return "id" if isinstance(assignee, uuid.UUID) else assignee


_ASSIGNEE_CONDITIONS: dict[str | None, Callable[[], ColumnElement[bool] | None]] = {
    None: lambda: None,
    "me": lambda: Task.assignee_id == CALLER,
    "none": lambda: Task.assignee_id.is_(None),
    "id": lambda: Task.assignee_id == bindparam("assignee", type_=Task.assignee_id.type),
}

_FILTERS: tuple[_Filter, ...] = (
    _any_of("statuses", Task.status, "status"),
    _any_of("priorities", Task.priority, "priority"),
    _if_sent("due_after", lambda: Task.due_at >= bindparam("due_after")),
    _if_sent("due_before", lambda: Task.due_at < bindparam("due_before")),
    _if_sent(
        "search",
        lambda: Task.search_text.like(bindparam("search"), escape="\\"),
        bound=lambda search: f"%{_escape_like(search)}%",
    ),
    _Filter(
        shape=_assignee_kind,
        params=lambda filters: (
            {"assignee": filters.assignee} if isinstance(filters.assignee, uuid.UUID) else {}
        ),
        condition=lambda kind: _ASSIGNEE_CONDITIONS[kind](),
    ),
    _Filter(
        shape=lambda filters: len(filters.label_keys),
        params=lambda filters: {f"label_{i}": key for i, key in enumerate(filters.label_keys)},
        condition=lambda count: _carries_labels(count) if count else None,
    ),
)


async def list_visible(
    db: Queries,
    *,
    caller_id: uuid.UUID,
    filters: TaskFilters,
    order: SortOrder,
    after: pagination.Position | None,
    limit: int,
) -> list[TaskRecord]:
    """One page in keyset order; ties broken by id in the sort's direction, missing due dates last.

    Each scope (the caller's personal tasks, each of their projects) is a walk of a
    `(scope, <sort column>, id)` index in one direction, so a page costs the same however many
    tasks a scope holds. Tasks without a due date are a second segment (`due_at IS NULL`, by id)
    read only when the first one runs out: a single `NULLS LAST` ordering would not match the
    index when descending, and PostgreSQL would sort.
    """
    params = _page_params(caller_id, filters)
    tasks: list[TaskRecord] = []
    if after is None or after.key is not None:
        keyed = {**params, "limit": limit}
        if after is not None:
            keyed.update(after_key=after.key, after_id=after.last_id)
        shape = _shape(db.dialect, order, filters, after, undated=False)
        tasks = await db.records(_page_statement(shape), keyed, TaskRecord)
    if order.nullable and len(tasks) < limit:
        undated = {**params, "limit": limit - len(tasks)}
        if after is not None and after.key is None:
            undated["after_id"] = after.last_id
        in_undated = after if after is not None and after.key is None else None
        shape = _shape(db.dialect, order, filters, in_undated, undated=True)
        tasks += await db.records(_page_statement(shape), undated, TaskRecord)
    return tasks


def _shape(
    dialect: str,
    order: SortOrder,
    filters: TaskFilters,
    after: pagination.Position | None,
    *,
    undated: bool,
) -> _PageShape:
    return _PageShape(
        dialect=dialect,
        order=order,
        undated=undated,
        after=after is not None,
        personal=filters.personal,
        all_projects=filters.all_projects,
        projects=len(filters.project_ids),
        filters=tuple(each.shape(filters) for each in _FILTERS),
        custom_plan=bool(filters.label_keys),
    )


def _page_params(caller_id: uuid.UUID, filters: TaskFilters) -> dict[str, Any]:
    params: dict[str, Any] = {"caller_id": caller_id}
    params.update({f"project_{i}": value for i, value in enumerate(filters.project_ids)})
    for each in _FILTERS:
        params.update(each.params(filters))
    return params


@lru_cache(maxsize=512)
def _page_statement(shape: _PageShape) -> Executable:
    """Built once per shape, so the runner compiles it once too.

    On PostgreSQL each scope is its own index walk, limited to the page (`LATERAL` per project),
    and the page is the first rows of their union: the cost follows the page size and the number
    of projects, never the number of tasks (ADR 0014). SQLite, the embedded single-user default,
    reads the scopes as one filter.
    """
    if shape.dialect != "postgresql":
        return _walk(shape, _scopes(shape))
    if not (shape.all_projects or shape.projects):  # personal tasks only: one index walk
        walk = _walk(shape, OWN_TASK)
        return walk.execution_options(custom_plan=True) if shape.custom_plan else walk
    # Each arm yields only the page's keys (read from its index alone when no filter needs the
    # row); the page's rows are then read by primary key: a member of n projects sorts
    # n x limit narrow keys, not n x limit whole rows.
    key_columns = [Task.id] + ([] if shape.undated else [getattr(Task, shape.order.column)])
    arms: list[Select[Any]] = []
    if shape.personal:
        arms.append(_walk(shape, OWN_TASK, key_columns))
    if shape.all_projects or shape.projects:
        per_project = _walk(
            shape, Task.project_id == ProjectMember.project_id, key_columns
        ).lateral()
        arms.append(
            select(*per_project.c)
            .select_from(ProjectMember)
            .join(per_project, true())
            .where(OWN_MEMBERSHIP, *_chosen_projects(shape, ProjectMember.project_id))
        )
    # Ordered and limited even with one arm: the LATERAL arm alone yields a page per project.
    merged = (union_all(*arms) if len(arms) > 1 else arms[0]).subquery()
    merged_keys = [merged.c[name] for name in _sort_keys(shape)]
    page = (
        select(*merged.c)
        .order_by(*pagination.directed(merged_keys, descending=shape.order.descending))
        .limit(bindparam("limit"))
        .subquery()
    )
    keys = [page.c[name] for name in _sort_keys(shape)]
    statement = (
        select(*_TASK)
        .select_from(page)
        .join(Task, Task.id == page.c.id)
        .order_by(*pagination.directed(keys, descending=shape.order.descending))
    )
    if shape.custom_plan:
        # A generic plan does not know how many of the caller's tasks carry the label and may
        # pick a bitmap of every one of them plus a sort: plan each execution with its values.
        statement = statement.execution_options(custom_plan=True)
    return statement


def _chosen_projects(shape: _PageShape, column: Any) -> list[ColumnElement[bool]]:
    if not shape.projects:
        return []
    return [
        column.in_(
            [bindparam(f"project_{i}", type_=Task.project_id.type) for i in range(shape.projects)]
        )
    ]


def _scopes(shape: _PageShape) -> ColumnElement[bool]:
    """Every scope the listing reads, as one condition."""
    scopes: list[ColumnElement[bool]] = []
    if shape.personal:
        scopes.append(OWN_TASK)
    if shape.all_projects or shape.projects:
        theirs = select(ProjectMember.project_id).where(
            OWN_MEMBERSHIP, *_chosen_projects(shape, ProjectMember.project_id)
        )
        scopes.append(Task.project_id.in_(theirs.scalar_subquery()))
    return or_(*scopes)


def _sort_keys(shape: _PageShape) -> tuple[str, ...]:
    return ("id",) if shape.undated else (shape.order.column, "id")


def _walk(shape: _PageShape, scope: ColumnElement[bool], columns: Any = _TASK) -> Select[Any]:
    """One scope's tasks in the page's order, from the cursor on, at most a page of them."""
    order = shape.order
    column: Any = getattr(Task, order.column)
    query = select(*columns).where(scope, *_filter_clauses(shape))
    if shape.undated:
        query = query.where(column.is_(None))
    elif order.nullable:
        query = query.where(column.is_not(None))
    sort_keys = tuple(getattr(Task, name) for name in _sort_keys(shape))
    if shape.after:
        query = query.where(pagination.beyond(sort_keys, descending=order.descending))
    return query.order_by(*pagination.directed(sort_keys, descending=order.descending)).limit(
        bindparam("limit")
    )


def _filter_clauses(shape: _PageShape) -> list[ColumnElement[bool]]:
    conditions = (each.condition(used) for each, used in zip(_FILTERS, shape.filters, strict=True))
    return [condition for condition in conditions if condition is not None]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True, slots=True)
class IdempotentResponse:
    """What a keyed create answered first; `resource_id` is None while it is still running."""

    request_hash: str
    response_body: str
    resource_id: uuid.UUID | None


_THIS_KEY = (
    IdempotencyRecord.user_id == bindparam("caller_id"),
    IdempotencyRecord.key == bindparam("idempotency_key"),
)
_FIND_RESPONSE = select(
    *selecting(
        IdempotentResponse,
        IdempotencyRecord.request_hash,
        IdempotencyRecord.response_body,
        IdempotencyRecord.resource_id,
    )
).where(*_THIS_KEY, IdempotencyRecord.expires_at > bindparam("now"))
_DELETE_EXPIRED_KEY = delete(IdempotencyRecord).where(
    *_THIS_KEY, IdempotencyRecord.expires_at <= bindparam("now")
)
_CLAIM_KEY = (
    upsert(IdempotencyRecord)
    .values(
        user_id=bindparam("caller_id"),
        key=bindparam("idempotency_key"),
        request_hash=bindparam("request_hash"),
        response_body="",
        created_at=bindparam("now"),
        expires_at=bindparam("expires_at"),
    )
    .on_conflict_do_nothing(index_elements=[IdempotencyRecord.user_id, IdempotencyRecord.key])
    .returning(IdempotencyRecord.key)
)
_RECORD_RESPONSE = (
    update(IdempotencyRecord)
    .where(*_THIS_KEY)
    .values(response_body=bindparam("body"), resource_id=bindparam("new_resource_id"))
)
_DELETE_EXPIRED_RECORDS = (
    delete(IdempotencyRecord)
    .where(IdempotencyRecord.expires_at <= bindparam("now"))
    .returning(IdempotencyRecord.key)
)


async def find_response(
    db: Queries, *, user_id: uuid.UUID, key: str, now: datetime
) -> IdempotentResponse | None:
    params = {"caller_id": user_id, "idempotency_key": key, "now": now}
    return await db.record(_FIND_RESPONSE, params, IdempotentResponse)


async def claim_key(
    db: Queries,
    *,
    user_id: uuid.UUID,
    key: str,
    request_hash: str,
    now: datetime,
    expires_at: datetime,
) -> bool:
    """Take the key; False if another request holds it (the primary key decides).

    On PostgreSQL a concurrent claim of the same key waits for the holder's transaction and
    then does nothing, so the loser can read the winner's committed response.
    """
    await db.execute(
        _DELETE_EXPIRED_KEY, {"caller_id": user_id, "idempotency_key": key, "now": now}
    )
    params = {
        "caller_id": user_id,
        "idempotency_key": key,
        "request_hash": request_hash,
        "now": now,
        "expires_at": expires_at,
    }
    return await db.count(_CLAIM_KEY, params) > 0


async def record_response(
    db: Queries, *, user_id: uuid.UUID, key: str, body: str, resource_id: uuid.UUID
) -> None:
    params = {
        "caller_id": user_id,
        "idempotency_key": key,
        "body": body,
        "new_resource_id": resource_id,
    }
    await db.execute(_RECORD_RESPONSE, params)


async def delete_expired_idempotency_records(db: Queries, *, now: datetime) -> int:
    return await db.count(_DELETE_EXPIRED_RECORDS, {"now": now})

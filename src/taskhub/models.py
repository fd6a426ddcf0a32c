"""Every model, imported in one place so that metadata (and Alembic) sees all tables."""

from taskhub.auth.models import RefreshToken, User, UserSession
from taskhub.comments.models import Comment
from taskhub.notifications.models import Notification
from taskhub.projects.models import Project, ProjectMember
from taskhub.tasks.models import IdempotencyRecord, Task, TaskQuota

__all__ = [
    "Comment",
    "IdempotencyRecord",
    "Notification",
    "Project",
    "ProjectMember",
    "RefreshToken",
    "Task",
    "TaskQuota",
    "User",
    "UserSession",
]

"""People and who they work for: roles, entities (الجهات) and users.

Owns the roles and their permissions' names (`roles`), the entities that execute directives
(`entities`), users and their passwords (`users`) and the throttling of failed sign-ins
(`login_attempts`). What a user may *see* is decided by `engine.directives.access`, which knows directives.

May import: `engine.calendar`, `engine.storage`, `engine.foundation`.
"""

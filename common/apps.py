from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    """django.contrib.admin with the project's site as `admin.site` (see common.admin.ProjectAdminSite)."""

    default_site = "common.admin.ProjectAdminSite"

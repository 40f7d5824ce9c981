"""The pages' toolkit: sessions, forms, CSRF, sign-in, error pages, charts, templates and static files."""

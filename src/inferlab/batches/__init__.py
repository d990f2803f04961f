"""The Batch API: tenant-scoped files (``/v1/files``), batches (``/v1/batches``) and the
background runner that answers their lines through the request chain at the lowest class."""

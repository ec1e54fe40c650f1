"""The Dask worker plugin of :mod:`._lifeline` (imported only where Dask is)."""

from distributed.diagnostics.plugin import WorkerPlugin

from ._lifeline import die_with_parent


class DieWithParent(WorkerPlugin):
    """Each worker process of the job's LocalCluster dies with the job's process
    (also the workers a nanny restarts)."""

    name = "wavecore-die-with-parent"

    def setup(self, worker):  # noqa: ARG002 - the WorkerPlugin interface
        die_with_parent()


def install(client) -> None:
    register = getattr(client, "register_plugin", None) or client.register_worker_plugin
    register(DieWithParent())

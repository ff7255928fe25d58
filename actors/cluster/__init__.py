"""Several runtimes (nodes) serving one store: session leases, fencing and the heartbeat."""

from ._placement import ClusterStatus as ClusterStatus
from ._placement import Node as Node
from ._placement import SessionPlacement as SessionPlacement

"""The dashboard's views, one module per object: experiments, executions, compare, downloads,
share links, new runs, the queue, and the RemoteMonitor receiver."""

"""Native plugins: the ABI tag read before any plugin code runs (:mod:`.tag`), loading
(:mod:`.loader`), the adapters that put native sources, sinks and functions behind the
contract's Protocols (:mod:`.adapters`, :mod:`.functions`, :mod:`.calls`), and the services
the host hands to plugins (:mod:`.hostapi`). Nothing here knows of the engine or of processes.
"""

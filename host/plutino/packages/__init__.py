"""Plugin packages: the zip format and its manifest (:mod:`.format`), fetching (:mod:`.fetch`),
verifying (:mod:`.verify`), install scripts (:mod:`.scripts`), crash recovery
(:mod:`.recovery`), the installed plugins (:mod:`.installed`), the install manager
(:mod:`.manager`) and new-plugin scaffolding (:mod:`.scaffold`).
"""

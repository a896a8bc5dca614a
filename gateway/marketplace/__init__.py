"""The live marketplace: auctions on channels, member-signed settlement, on-chain grants.

- :mod:`.auctions` — terms, bids, deadline and winner (pure domain);
- :mod:`.service` — :class:`~.service.MarketplaceService` on the gateway's seams;
- :mod:`.prepared` — transactions the gateway prepares and members sign (offline signing);
- :mod:`.access` — the access contract's grants as an authorizer policy, and revocations;
- :mod:`.ledger` — the ledger connection it borrows from the trust path;
- :mod:`.errors` — AL19xx.

HTTP routes and the page: :mod:`gateway.web.marketplace`; member side:
:mod:`gateway.client.marketplace` and :mod:`gateway.client.settlement`.
"""

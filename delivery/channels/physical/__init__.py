"""Physical cards: printed, packed and shipped by a vendor.

The card is issued inactive (:mod:`delivery.orders.processing`); its gift delivery is
due at the next cut-off (:mod:`.cutoff`). At a cut-off the due cards are claimed by the
dispatcher into a batch (:mod:`.batches`), each card's code sealed to the vendor's key
(:mod:`.sealing`), and handed over as a manifest and packing slips (:mod:`.manifest`,
:mod:`.slips`) by a file drop or an HTTP post (:mod:`.backends`). ``sent`` means the
vendor took the batch; ``delivered`` means the vendor reported the card shipped, which
activates it and tells the purchaser the tracking number (:mod:`.reports`). A card
reported lost or damaged is voided and a new one goes into the next batch.

Also: ``models`` (batches, their cards, the vendor's reports), ``postal`` (addresses per
country, checked at intake), ``sender`` (the channel behind the Sender seam), ``tracking``
(shipments, for the purchaser's notice), ``ops`` and ``cli`` (what ops do, ``giftq
fulfilment``), ``schedule`` (beat's schedule of the cut-offs), ``errors``.
"""

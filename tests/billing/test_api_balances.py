"""GET /api/v1/pos/balances: full snapshot, delta, paging, unservable cursors, cost, and
the known trap of delta feeds (a reader must never skip a commit)."""

import threading
import time
from decimal import Decimal

import orjson
import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from billing.feed import customers_touch
from billing.models import BalanceFeed, BalanceMovementKind, Customer, ProductBlock
from billing.selectors import BalanceCursor, _page_read_python, _page_read_sql, balance_cursor_encode
from billing.services import customer_balance_credit, customer_units_add
from inventory.models import Product
from nodes.models import Institution

BALANCES = "/api/v1/pos/balances"


def _pull(client, cursor=None, limit=None):
    params = {}
    if cursor is not None:
        params["cursor"] = cursor
    if limit is not None:
        params["limit"] = limit
    response = client.get(BALANCES, params)
    assert response.status_code == 200, response.content
    return response.json()


def _drain(client, cursor=None, limit=None):
    """Pull pages until ``has_more`` is false; return (pages, final cursor)."""
    pages = []
    while True:
        page = _pull(client, cursor, limit)
        pages.append(page)
        cursor = page["cursor"]
        if not page["has_more"]:
            return pages, cursor


def _codes(pages):
    return [customer["code"] for page in pages for customer in page["customers"]]


def _school_codes(demo):
    return {c["code"] for c in demo["customers"] if c["institution"] == "COL-SANJOSE"}


@pytest.mark.django_db
def test_full_snapshot_without_cursor_holds_every_customer_of_the_institution(pos_client, demo):
    body = _pull(pos_client("N1-CAJA-01"))

    assert body["full"] is True
    assert body["has_more"] is False
    assert isinstance(body["cursor"], str)
    assert body["cursor"]
    codes = [c["code"] for c in body["customers"]]
    assert sorted(codes) == sorted(_school_codes(demo))
    ana = next(c for c in body["customers"] if c["code"] == "C-000123")
    # The contract's example customer, exactly.
    assert ana == {
        "code": "C-000123",
        "name": "Ana Pérez",
        "balance": "12000.00",
        "overdraft_limit": "5000.00",
        "available": "17000.00",
        "daily_max": "20000.00",
        "active": True,
        "blocked_products": ["SKU-GASEOSA"],
        "units": {"ALMUERZO": 12},
    }
    near_limit = next(c for c in body["customers"] if c["code"] == "C-000200")
    assert near_limit["balance"] == "-4500.00"
    assert near_limit["available"] == "500.00"
    assert near_limit["daily_max"] is None
    assert near_limit["units"] == {}
    lucia = next(c for c in body["customers"] if c["code"] == "C-000201")
    assert lucia["blocked_products"] == ["SKU-CHOCOLATINA", "SKU-PAPAS"]


@pytest.mark.django_db
def test_snapshot_matches_the_demo_output(pos_client, demo):
    body = _pull(pos_client("N3-CAJA-01"))
    served = {c["code"]: c for c in body["customers"]}

    for expected in (c for c in demo["customers"] if c["institution"] == "EMP-ANDINA"):
        row = served[expected["code"]]
        assert row["balance"] == expected["balance"]
        assert row["overdraft_limit"] == expected["overdraft_limit"]
        assert row["daily_max"] == expected["daily_max"]
        assert row["blocked_products"] == expected["blocked_products"]
        assert row["units"] == expected["units"]


@pytest.mark.django_db
def test_delta_serves_a_change_once_and_leaves_untouched_customers_out(pos_client):
    client = pos_client("N1-CAJA-01")
    cursor = _pull(client)["cursor"]
    assert _pull(client, cursor)["customers"] == []  # nothing changed yet

    # When a top-up is recorded through the ledger
    customer_balance_credit(customer=Customer.objects.get(code="C-000200"), amount=Decimal("3000"))

    # Then the next pull has exactly that customer, as it is now
    delta = _pull(client, cursor)
    assert delta["full"] is False
    assert delta["has_more"] is False
    assert [c["code"] for c in delta["customers"]] == ["C-000200"]
    assert delta["customers"][0]["balance"] == "-1500.00"
    assert delta["customers"][0]["available"] == "3500.00"
    # And only once
    again = _pull(client, delta["cursor"])
    assert again["customers"] == []
    assert again["full"] is False


@pytest.mark.django_db
def test_delta_serves_unit_block_and_status_changes(pos_client):
    client = pos_client("N1-CAJA-01")
    cursor = _pull(client)["cursor"]
    ana = Customer.objects.get(code="C-000123")

    customer_units_add(customer=ana, unit_type="ALMUERZO", quantity=-2)
    delta = _pull(client, cursor)
    assert [c["units"] for c in delta["customers"]] == [{"ALMUERZO": 10}]

    customer_balance_credit(
        customer=Customer.objects.get(code="C-000201"), amount=Decimal("-500"), kind=BalanceMovementKind.CORRECTION
    )
    later = _pull(client, delta["cursor"])
    assert [(c["code"], c["balance"]) for c in later["customers"]] == [("C-000201", "7500.00")]


@pytest.mark.django_db
def test_full_snapshot_pages_with_has_more_and_hands_over_to_the_delta(pos_client, demo):
    client = pos_client("N1-CAJA-01")

    pages, cursor = _drain(client, limit=3)

    assert len(pages) == 3  # 8 customers, 3 per page
    assert [p["has_more"] for p in pages] == [True, True, False]
    assert all(p["full"] is True for p in pages)  # every page of a snapshot says so
    codes = _codes(pages)
    assert len(codes) == len(set(codes))
    assert set(codes) == _school_codes(demo)
    # After the snapshot, the cursor is a delta cursor.
    assert _pull(client, cursor) == {"full": False, "cursor": cursor, "has_more": False, "customers": []}


@pytest.mark.django_db
def test_delta_pages_and_a_customer_changed_mid_paging_is_served_again(pos_client):
    client = pos_client("N1-CAJA-01")
    cursor = _pull(client)["cursor"]
    first, second = Customer.objects.get(code="C-000123"), Customer.objects.get(code="C-000201")
    customer_balance_credit(customer=first, amount=Decimal("100"))
    customer_balance_credit(customer=second, amount=Decimal("200"))

    page1 = _pull(client, cursor, limit=1)
    assert page1["has_more"] is True
    assert page1["full"] is False
    assert [c["code"] for c in page1["customers"]] == ["C-000123"]
    customer_balance_credit(customer=first, amount=Decimal("1"))  # changes again while paging
    pages, _ = _drain(client, page1["cursor"], limit=1)

    assert [(c["code"], c["balance"]) for c in pages[0]["customers"] + pages[1]["customers"]] == [
        ("C-000201", "8200.00"),
        ("C-000123", "12101.00"),
    ]


@pytest.mark.django_db
def test_foreign_cursor_gives_a_full_snapshot_of_the_own_institution_only(pos_client, demo):
    company_cursor = _pull(pos_client("N3-CAJA-01"))["cursor"]

    body = _pull(pos_client("N1-CAJA-01"), company_cursor)

    assert body["full"] is True
    assert {c["code"] for c in body["customers"]} == _school_codes(demo)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "cursor",
    [
        "basura",
        "v1:1:5:3",
        "",
        "x" * 5000,
        # A well-formed payload [1, 1, 1, 8, 3, 0] with a made-up signature.
        "WzEsMSwxLDgsMywwXQ:XmmHD-KDpFmJd7utvyO_QaIo6CsXokAo0ppRi1TvrWQ",
    ],
)
def test_malformed_or_forged_cursor_gives_a_full_snapshot(pos_client, demo, cursor):
    body = _pull(pos_client("N1-CAJA-01"), cursor)

    assert body["full"] is True
    assert {c["code"] for c in body["customers"]} == _school_codes(demo)


@pytest.mark.django_db
def test_tampered_cursor_gives_a_full_snapshot(pos_client, demo):
    client = pos_client("N1-CAJA-01")
    cursor = _pull(client)["cursor"]
    tampered = cursor[:-1] + ("A" if cursor[-1] != "A" else "B")

    assert _pull(client, tampered)["full"] is True


@pytest.mark.django_db
def test_cursor_from_another_epoch_or_beyond_the_feed_gives_a_full_snapshot(pos_client, demo):
    client = pos_client("N1-CAJA-01")
    institution = Institution.objects.get(code="COL-SANJOSE")
    feed = BalanceFeed.objects.get(institution=institution)
    ahead = balance_cursor_encode(BalanceCursor(institution.pk, feed.epoch, feed.last_seq + 50, 0))
    assert _pull(client, ahead)["full"] is True

    cursor = _pull(client)["cursor"]
    assert _pull(client, cursor)["full"] is False
    # An operator restores a backup and starts a new feed epoch: old cursors cannot be served.
    BalanceFeed.objects.filter(pk=feed.pk).update(epoch=F("epoch") + 1)
    body = _pull(client, cursor)
    assert body["full"] is True
    assert {c["code"] for c in body["customers"]} == _school_codes(demo)


@pytest.mark.django_db
@pytest.mark.parametrize("limit", ["0", "-1", "20001", "muchos", "1.5"])
def test_invalid_limit_is_a_400_in_the_error_shape(pos_client, limit):
    response = pos_client("N1-CAJA-01").get(BALANCES, {"limit": limit})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert "limit" in error["details"]["fields"]


@pytest.mark.django_db
def test_limit_bounds_are_accepted(pos_client):
    client = pos_client("N1-CAJA-01")
    assert len(_pull(client, limit=1)["customers"]) == 1
    assert _pull(client, limit=20000)["has_more"] is False


@pytest.mark.django_db
def test_balances_isolation_between_institutions_both_ways(pos_client, demo):
    school = _pull(pos_client("N2-CAJA-01"))
    company = _pull(pos_client("N3-CAJA-01"))
    company_cursor = company["cursor"]

    assert {c["code"] for c in company["customers"]} == {
        c["code"] for c in demo["customers"] if c["institution"] == "EMP-ANDINA"
    }
    assert {c["code"] for c in school["customers"]} == _school_codes(demo)
    # A change in one institution never shows up in the other's delta.
    customer_balance_credit(customer=Customer.objects.get(code="C-000123"), amount=Decimal("1000"))
    assert _pull(pos_client("N3-CAJA-01"), company_cursor)["customers"] == []
    assert [c["code"] for c in _pull(pos_client("N2-CAJA-01"), school["cursor"])["customers"]] == ["C-000123"]


@pytest.mark.django_db
def test_kitchen_keys_do_not_read_balances(pos_client):
    response = pos_client("N1-COCINA-01").get(BALANCES)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.django_db
def test_kiosks_read_balances(pos_client):
    assert _pull(pos_client("N1-KIOSCO-01"))["full"] is True


def _page_queries() -> int:
    """Queries of a non-empty page: key lookup, feed row, then on PostgreSQL one statement
    for the page with its blocks and units, elsewhere the page, its blocks, its units."""
    return 3 if connection.vendor == "postgresql" else 5


@pytest.mark.django_db
def test_delta_and_snapshot_cost_a_fixed_number_of_queries(pos_client, django_assert_num_queries):
    client = pos_client("N1-CAJA-01")
    institution = Institution.objects.get(code="COL-SANJOSE")
    cursor = _pull(client)["cursor"]
    customer_balance_credit(customer=Customer.objects.get(code="C-000123"), amount=Decimal("1"))
    with django_assert_num_queries(_page_queries()):
        one = _pull(client, cursor)
    assert len(one["customers"]) == 1

    # Many more customers, with blocks and units, all changed since the cursor.
    gaseosa = Product.objects.get(institution=institution, sku="SKU-GASEOSA")
    for index in range(40):
        customer = Customer.objects.create(institution=institution, code=f"C-9{index:05d}", name=f"Cliente {index}")
        customer_balance_credit(customer=customer, amount=Decimal(1000 + index))
        if index % 2:
            ProductBlock.objects.create(customer=customer, product=gaseosa)
            customer_units_add(customer=customer, unit_type="ALMUERZO", quantity=index)
    with django_assert_num_queries(_page_queries()):
        many = _pull(client, one["cursor"])
    assert len(many["customers"]) == 40
    assert many["customers"][1]["blocked_products"] == ["SKU-GASEOSA"]
    assert many["customers"][1]["units"] == {"ALMUERZO": 1}

    with django_assert_num_queries(_page_queries()):
        snapshot = _pull(client)
    assert len(snapshot["customers"]) == 48

    # An empty delta costs no more (and elsewhere does not even look for blocks and units).
    with django_assert_num_queries(3):
        assert _pull(client, many["cursor"])["customers"] == []


# --- PostgreSQL: the real plan and real concurrency -------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db
def test_delta_query_uses_the_feed_index(pos_client):
    # Given an institution with many customers, few of them changed recently
    client = pos_client("N1-CAJA-01")
    institution = Institution.objects.get(code="COL-SANJOSE")
    Customer.objects.bulk_create(
        Customer(institution=institution, code=f"C-8{index:05d}", name=f"Cliente {index}") for index in range(5000)
    )
    _, cursor = _drain(client)
    customer_balance_credit(customer=Customer.objects.get(code="C-000123"), amount=Decimal("1"))
    with connection.cursor() as db:
        db.execute("ANALYZE billing_customer")

    # When a terminal pulls the delta
    with CaptureQueriesContext(connection) as queries:
        assert [c["code"] for c in _pull(client, cursor)["customers"]] == ["C-000123"]

    # Then the planner reads the page from the feed index, not the whole institution
    page_sql = next(q["sql"] for q in queries.captured_queries if 'FROM "billing_customer"' in q["sql"])
    with connection.cursor() as db:
        db.execute("EXPLAIN " + page_sql)
        plan = "\n".join(row[0] for row in db.fetchall())
    assert "customer_feed_idx" in plan, plan


@pytest.mark.postgres
@pytest.mark.django_db
def test_page_written_by_postgresql_is_byte_identical_to_the_python_one(pos_client):
    # Given customers with everything the wire format has to get right: several blocks (in
    # SKU order), several unit types, no daily maximum, a negative balance, a zero and a
    # large one, an inactive customer, and names JSON must escape
    institution = Institution.objects.get(code="COL-SANJOSE")
    skus = [
        Product.objects.create(institution=institution, sku=sku, name=sku, price=Decimal(100)).sku
        for sku in ('SKU-Z"LATA"', "SKU-ÁGUA", "SKU-A")
    ]
    names = [
        'Comillas " y barra \\ y / ',
        "Línea\nnueva\ttab\r\x01\x1f\x7f",
        "Ñandú 🍔 \u2028 \u00e9",
        "",
    ]
    made = []
    for index, name in enumerate(names * 3):
        customer = Customer.objects.create(
            institution=institution,
            code=f"C-7{index:05d}",
            name=name,
            overdraft_limit=Decimal("5000.00") if index % 2 else Decimal(0),
            daily_max=None if index % 3 else Decimal("20000.50"),
            active=index % 4 != 1,
        )
        made.append(customer)
    customer_balance_credit(customer=made[0], amount=Decimal("-4500.10"), kind=BalanceMovementKind.CORRECTION)
    customer_balance_credit(customer=made[1], amount=Decimal("999999999999.99"))
    customer_balance_credit(customer=made[2], amount=Decimal("0.05"))
    products = list(Product.objects.filter(institution=institution, sku__in=skus))
    for customer in made[:4]:
        for product in products:
            ProductBlock.objects.create(customer=customer, product=product)
    customer_units_add(customer=made[2], unit_type="ONCES", quantity=3)
    customer_units_add(customer=made[2], unit_type="ALMUERZO", quantity=12)
    customer_units_add(customer=made[3], unit_type="ALMUERZO", quantity=-2)
    institution_id = institution.pk

    # When the same pages are written by PostgreSQL and in Python
    for start_seq, start_id, limit in [(0, 0, 20000), (0, 0, 5), (0, made[3].pk, 4), (10**9, 0, 10)]:
        args = {"institution_id": institution_id, "start_seq": start_seq, "start_id": start_id, "limit": limit}
        from_sql = _page_read_sql(**args)
        from_python = _page_read_python(**args)

        # Then they are the same, byte for byte, and valid JSON
        assert from_sql == from_python
        assert isinstance(orjson.loads(from_sql[2]), list)
    full = orjson.loads(_page_read_sql(institution_id=institution_id, start_seq=0, start_id=0, limit=20000)[2])
    served = {c["code"]: c for c in full}
    assert served[made[0].code]["balance"] == "-4500.10"
    # (in the database's collation, which both writers use)
    assert sorted(served[made[0].code]["blocked_products"]) == sorted(skus)
    assert served[made[2].code]["units"] == {"ALMUERZO": 12, "ONCES": 3}
    assert served[made[1].code]["available"] == "1000000004999.99"
    assert served[made[1].code]["active"] is False
    assert served[made[1].code]["daily_max"] is None
    assert served[made[1].code]["name"] == names[1]


def _interleaved_customers(ours, theirs, *, ours_every: int, count: int):
    """``count`` customers of ``ours``, each created after ``ours_every - 1`` of ``theirs``
    (so the ids of ours are ``ours_every`` apart); every second one of ours and all of
    theirs with a block and units. Returns ours."""
    made = []
    products = {
        inst.pk: Product.objects.create(institution=inst, sku=f"SKU-{inst.pk}-X", name="X", price=Decimal(100))
        for inst in (ours, theirs)
    }
    for index in range(count * ours_every):
        inst = ours if index % ours_every == 0 else theirs
        customer = Customer.objects.create(institution=inst, code=f"C-6{index:05d}", name=f"Cliente {index}")
        if inst is theirs or len(made) % 2 == 0:
            ProductBlock.objects.create(customer=customer, product=products[inst.pk])
            customer_units_add(customer=customer, unit_type="ALMUERZO", quantity=index + 1)
        if inst is ours:
            made.append(customer)
    return made


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize(("ours_every", "dense"), [(2, True), (9, False)])
def test_blocks_and_units_of_dense_and_scattered_pages_match_the_python_writer(demo, ours_every, dense):
    # Given customers of two institutions created in turn: ours two ids apart (a page of
    # them spans under four times its size, so its blocks and units are read by the span
    # of ids, which also holds the other institution's) or nine apart (read by the ids)
    ours = Institution.objects.get(code="COL-SANJOSE")
    theirs = Institution.objects.exclude(pk=ours.pk).first()
    made = _interleaved_customers(ours, theirs, ours_every=ours_every, count=12)
    # (changed in one transaction: one feed sequence, so the page's order is the ids')
    with transaction.atomic():
        customers_touch(institution_id=ours.pk, customer_ids=[c.pk for c in made])
    seq = Customer.objects.get(pk=made[0].pk).change_seq
    first = Customer.objects.filter(change_seq=seq, pk__lt=made[0].pk).order_by("pk").last()
    start_id = first.pk if first else 0
    span = made[-1].pk - made[0].pk
    assert (span < 4 * len(made)) is dense

    # When the page of exactly these customers is written by PostgreSQL and in Python
    args = {"institution_id": ours.pk, "start_seq": seq, "start_id": start_id, "limit": len(made)}
    from_sql = _page_read_sql(**args)

    # Then both agree, and the other institution's customers and products are not in it
    assert from_sql == _page_read_python(**args)
    page = orjson.loads(from_sql[2])
    assert [c["code"] for c in page] == [c.code for c in made]
    assert page[0]["blocked_products"] == [f"SKU-{ours.pk}-X"]
    assert page[0]["units"] == {"ALMUERZO": 1}
    assert (page[1]["blocked_products"], page[1]["units"]) == ([], {})


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_stored_head_of_a_customer_follows_every_write_of_its_row(demo):
    # Given a customer written in the page, then changed by the ORM in every way a writer
    # does: saved from a form, updated in bulk, its balance moved by the ledger
    institution = Institution.objects.get(code="COL-SANJOSE")
    customer = Customer.objects.create(institution=institution, code="C-5", name="Antes")
    args = {"institution_id": institution.pk, "start_seq": 0, "start_id": 0, "limit": 20000}
    before = _page_read_sql(**args)

    customer.name = 'Después "ya" \\ \n'
    customer.daily_max = Decimal("123.40")
    customer.save()
    Customer.objects.filter(pk=customer.pk).update(active=False, overdraft_limit=F("overdraft_limit") + 7)
    customer_balance_credit(customer=customer, amount=Decimal("10.01"))

    # Then the page PostgreSQL writes has the new values, as the Python writer has them
    after = _page_read_sql(**args)
    assert after != before
    assert after == _page_read_python(**args)
    served = {c["code"]: c for c in orjson.loads(after[2])}["C-5"]
    assert served["name"] == 'Después "ya" \\ \n'
    assert (served["active"], served["overdraft_limit"], served["balance"]) == (False, "7.00", "10.01")
    assert (served["available"], served["daily_max"]) == ("17.01", "123.40")


def _lock_waiters() -> int:
    with connection.cursor() as db:
        db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return db.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_reader_between_two_overlapping_writers_never_skips_a_commit(pos_client):
    """Writer A takes its feed number and sleeps before committing; writer B, started
    after, must wait for A. A reader polling in between must end up with both changes:
    it may never see B's change, advance its cursor past it, and then miss A's."""
    client = pos_client("N1-CAJA-01")
    _, cursor = _drain(client)
    ana, tomas = Customer.objects.get(code="C-000123"), Customer.objects.get(code="C-000200")
    a_has_seq, release_a = threading.Event(), threading.Event()
    seqs: dict[str, int] = {}
    failures: list[BaseException] = []

    def writer_a():
        try:
            with transaction.atomic():
                customer_balance_credit(customer=ana, amount=Decimal("1000"))
                seqs["a"] = Customer.objects.values_list("change_seq", flat=True).get(pk=ana.pk)
                a_has_seq.set()
                release_a.wait(timeout=20)
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    def writer_b():
        try:
            customer_balance_credit(customer=tomas, amount=Decimal("2000"))
            seqs["b"] = Customer.objects.values_list("change_seq", flat=True).get(pk=tomas.pk)
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    thread_a = threading.Thread(target=writer_a)
    thread_b = threading.Thread(target=writer_b)
    seen: dict[str, str] = {}
    b_waited_for_a = False
    try:
        thread_a.start()
        assert a_has_seq.wait(timeout=20)
        thread_b.start()
        deadline = time.monotonic() + 5
        while thread_b.is_alive() and time.monotonic() < deadline:
            if _lock_waiters() > 0:  # B is queued on A's feed-row lock
                b_waited_for_a = True
                break
            time.sleep(0.02)

        # A reader in between. With the lock it sees neither change (A is not committed,
        # B has no number yet); a feed that let B commit first would show B here and move
        # the cursor past A's number.
        between = _pull(client, cursor)
        assert between["full"] is False
        seen.update({c["code"]: c["balance"] for c in between["customers"]})
        cursor = between["cursor"]
    finally:
        release_a.set()
        thread_a.join(timeout=20)
    thread_b.join(timeout=20)
    # Pull like a terminal, following the cursor, until nothing new comes.
    for _ in range(3):
        page = _pull(client, cursor)
        assert page["full"] is False
        seen.update({c["code"]: c["balance"] for c in page["customers"]})
        cursor = page["cursor"]

    assert not failures, failures
    assert seen == {"C-000123": "13000.00", "C-000200": "-2500.00"}, "the reader skipped a commit"
    assert b_waited_for_a
    assert seqs["a"] < seqs["b"]

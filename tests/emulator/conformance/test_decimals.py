"""Conformance: Edm.Decimal values are exact, Edm.Double values are floats (§4.6).

Decimal and Money columns hold ``System.Decimal`` values: every digit sent is kept (rounded only
to the column's ``Precision``, half to even: §11, point 21) and written back as an exact JSON
number, money with four decimals. The checks read the raw response text: a float parse would
hide the difference (``99999999999999.99`` and ``99999999999999.984375`` are one float).
"""

from __future__ import annotations

import re
import typing as t

from conformance_support import new_boundary

if t.TYPE_CHECKING:
    from conformance_support import Dataverse

RICH = "99999999999999.99"  # within annualincome's range (§3.8); no float holds it
RICH_TEXT = '"annualincome":99999999999999.9900'  # money: 4 decimals (§4.6)
JSON = {"Content-Type": "application/json"}
REPRESENTATION = {"Prefer": "return=representation", **JSON}


def _income(dv: Dataverse, lastname: str) -> str:
    """The raw text of ``GET contacts?$select=annualincome`` for one last name."""
    response = dv.get(f"contacts?$select=annualincome&$filter=lastname eq '{lastname}'")
    assert response.status_code == 200, response.text
    assert response.text.count('"annualincome"') == 1, response.text
    return response.text


def test_money_created_and_updated_keeps_every_digit(dv):
    """POST and PATCH with a money value no binary float holds: it comes back exactly."""
    response = dv.post(
        "contacts?$select=annualincome",
        data=f'{{"lastname":"Posted","annualincome":{RICH}}}',
        headers=REPRESENTATION,
    )
    assert response.status_code == 201, response.text
    assert RICH_TEXT in response.text
    assert RICH_TEXT in _income(dv, "Posted")
    record_id = dv.create("contacts", {"lastname": "Patched", "annualincome": 1})
    response = dv.patch(f"contacts({record_id})", data=f'{{"annualincome":{RICH}}}', headers=JSON)
    assert response.status_code == 204, response.text
    assert RICH_TEXT in _income(dv, "Patched")


def test_money_through_bulk_messages_keeps_every_digit(dv):
    """CreateMultiple and UpsertMultiple (§6.1, §6.3) keep every digit of a money value."""
    typed = '"@odata.type":"Microsoft.Dynamics.CRM.contact"'
    response = dv.post(
        "contacts/Microsoft.Dynamics.CRM.CreateMultiple",
        data=f'{{"Targets":[{{{typed},"lastname":"Created","annualincome":{RICH}}}]}}',
        headers=JSON,
    )
    assert response.status_code == 200, response.text
    assert RICH_TEXT in _income(dv, "Created")
    record_id = "5b2b1f3c-7f0e-4d8e-9a51-1c2d3e4f5a6b"
    response = dv.post(
        "contacts/Microsoft.Dynamics.CRM.UpsertMultiple",
        data=(
            f'{{"Targets":[{{{typed},"contactid":"{record_id}",'
            f'"lastname":"Upserted","annualincome":{RICH}}}]}}'
        ),
        headers=JSON,
    )
    assert response.status_code == 204, response.text
    assert RICH_TEXT in _income(dv, "Upserted")


def test_money_through_batch_keeps_every_digit(dv):
    """A ``$batch`` create part (§5.1) keeps every digit of a money value."""
    boundary = new_boundary("batch")
    part = "\r\n".join(
        [
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            "",
            "POST /api/data/v9.2/contacts HTTP/1.1",
            "Content-Type: application/json",
            "",
            f'{{"lastname":"Batched","annualincome":{RICH}}}',
        ]
    )
    response = dv.batch(f"--{boundary}\r\n{part}\r\n--{boundary}--\r\n", boundary)
    assert response.status_code == 200, response.text
    assert [p.status for p in dv.parts(response)] == [204]
    assert RICH_TEXT in _income(dv, "Batched")


def test_decimal_with_more_places_than_its_precision_is_rounded_half_to_even(dv):
    """§4.6, §11 point 21: a Decimal column (``exchangerate``, precision 10) keeps 10 places;
    the 11th rounds half to even (``…78905`` → ``…7890``, ``…78915`` → ``…7892``), exactly."""
    for code, sent, stored in [
        ("TSA", "1.12345678905", "1.1234567890"),
        ("TSB", "1.12345678915", "1.1234567892"),
        ("TSC", "1.123456789049", "1.1234567890"),
    ]:
        response = dv.post(
            "transactioncurrencies?$select=exchangerate",
            data=(
                f'{{"currencyname":"{code}","isocurrencycode":"{code}",'
                f'"currencysymbol":"{code}","exchangerate":{sent}}}'
            ),
            headers=REPRESENTATION,
        )
        assert response.status_code == 201, response.text
        assert re.search(rf'"exchangerate":{re.escape(stored)}[,}}]', response.text), (
            sent,
            response.text,
        )


def test_double_stays_a_float(dv):
    """§4.6: a Double column (``address1_latitude``, precision 5) is a binary float rounded to
    its precision: ``12.345678901234567`` comes back as the float ``12.34568``."""
    response = dv.post(
        "contacts?$select=address1_latitude",
        data='{"lastname":"Double","address1_latitude":12.345678901234567}',
        headers=REPRESENTATION,
    )
    assert response.status_code == 201, response.text
    assert re.search(r'"address1_latitude":12\.34568[,}]', response.text), response.text


def test_integer_accepts_an_integral_decimal_only(dv):
    """§4.6: an Integer column takes ``2.0`` as 2 and refuses ``2.5`` (cannot convert)."""
    response = dv.post(
        "contacts?$select=numberofchildren",
        data='{"lastname":"Whole","numberofchildren":2.0}',
        headers=REPRESENTATION,
    )
    assert response.status_code == 201, response.text
    assert re.search(r'"numberofchildren":2[,}]', response.text), response.text
    response = dv.post("contacts", data='{"lastname":"Half","numberofchildren":2.5}', headers=JSON)
    assert response.status_code == 400, response.text
    assert "Edm.Int32" in response.text


def test_filter_eq_on_an_exact_decimal(dv):
    """§3.1: ``$filter`` compares decimals exactly: ``…99.99`` matches, ``…99.98`` (the same
    binary float) does not."""
    for lastname, income in [("Exact", RICH), ("Near", "99999999999999.98")]:
        response = dv.post(
            "contacts", data=f'{{"lastname":"{lastname}","annualincome":{income}}}', headers=JSON
        )
        assert response.status_code == 204, response.text
    rows = dv.rows("contacts", f"$select=lastname&$filter=annualincome eq {RICH}")
    assert [row["lastname"] for row in rows] == ["Exact"]


def test_snapshot_holds_exact_decimals(dv):
    """``GET /_emulator/snapshot`` (docs/emulator-admin-api.md) writes money exactly."""
    response = dv.post(
        "contacts", data=f'{{"lastname":"Saved","annualincome":{RICH}}}', headers=JSON
    )
    assert response.status_code == 204, response.text
    snapshot = dv.session.get(f"{dv.base_url}/_emulator/snapshot", timeout=30)
    assert snapshot.status_code == 200, snapshot.text
    assert f'"annualincome":{RICH}' in snapshot.text

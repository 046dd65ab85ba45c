"""Concealment on staff screens: the admin shows an arm only once its assignment is final, and
never the seed (decision 0077)."""

from __future__ import annotations

import re

import pytest

from tertulia.randomization.services import assignment_finalize, assignment_make

LIMA = {"region": "lima", "cohabiting": "yes"}
ARMS = ("program", "control")


def between(html: str, start: str, end: str) -> str:
    match = re.search(re.escape(start) + r".*?" + re.escape(end), html, re.S)
    assert match, f"{start} not on the page"
    return match.group(0)


def cell(html: str, row_pk: int, field: str) -> str:
    rows = re.findall(r"<tr.*?</tr>", html, re.S)
    (row,) = [r for r in rows if f'/assignment/{row_pk}/change/"' in r]
    match = re.search(rf'class="field-{field}[^"]*">(.*?)</t[dh]>', row, re.S)
    assert match, f"no {field} cell in row {row_pk}"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


@pytest.mark.django_db
def test_the_list_hides_the_arm_until_the_assignment_is_final(admin_client, trial, men) -> None:  # type: ignore[no-untyped-def]
    pending = [
        assignment_make(trial=trial, participant=m, strata=LIMA, final=False) for m in men(3)
    ]
    page = admin_client.get("/admin/randomization/assignment/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    table = between(page.content.decode(), '<table id="result_list"', "</table>")
    for assignment in pending:
        assert cell(table, assignment.pk, "shown_arm") == "concealed until final"
    assert not any(arm in table for arm in ARMS)

    final = assignment_finalize(assignment=pending[0])
    page = admin_client.get("/admin/randomization/assignment/", HTTP_ACCEPT_LANGUAGE="en")
    table = between(page.content.decode(), '<table id="result_list"', "</table>")
    assert cell(table, final.pk, "shown_arm") == final.arm
    assert cell(table, pending[1].pk, "shown_arm") == "concealed until final"


@pytest.mark.django_db
def test_the_detail_page_hides_the_arm_and_its_block_position(admin_client, trial, men) -> None:  # type: ignore[no-untyped-def]
    (man,) = men(1)
    assignment = assignment_make(trial=trial, participant=man, strata=LIMA, final=False)
    url = f"/admin/randomization/assignment/{assignment.pk}/change/"
    page = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    form = between(page.content.decode(), 'id="assignment_form"', "</form>")
    assert "concealed until final" in form
    assert not any(arm in form for arm in ARMS)
    assert "slot" not in form.lower() and "block" not in form.lower()

    assignment_finalize(assignment=assignment)
    form = between(admin_client.get(url).content.decode(), 'id="assignment_form"', "</form>")
    assert assignment.arm in form


@pytest.mark.django_db
def test_the_arm_cannot_be_filtered_or_searched_on(admin_client, trial, men) -> None:  # type: ignore[no-untyped-def]
    """Filtering by arm would tell a concealed arm by which rows remain."""
    for m in men(4):
        assignment_make(trial=trial, participant=m, strata=LIMA, final=False)
    for query in ("arm=program", "arm__exact=control", "slot=0", "block_index__gt=0"):
        page = admin_client.get(f"/admin/randomization/assignment/?{query}")
        assert page.status_code == 400, query
    # No search fields: a search changes nothing.
    page = admin_client.get("/admin/randomization/assignment/?q=program")
    assert page.context["cl"].result_count == 4
    # The filters that exist are safe: by trial, by final or not.
    page = admin_client.get("/admin/randomization/assignment/?final=no")
    assert page.context["cl"].result_count == 4


@pytest.mark.django_db
def test_spanish_staff_see_the_concealment_in_spanish(admin_client, trial, men) -> None:  # type: ignore[no-untyped-def]
    (man,) = men(1)
    assignment = assignment_make(trial=trial, participant=man, strata=LIMA, final=False)
    page = admin_client.get("/admin/randomization/assignment/", HTTP_ACCEPT_LANGUAGE="es")
    table = between(page.content.decode(), '<table id="result_list"', "</table>")
    assert cell(table, assignment.pk, "shown_arm") == "oculto hasta que sea definitiva"


@pytest.mark.django_db
def test_the_trial_page_never_shows_the_seed(admin_client, trial) -> None:  # type: ignore[no-untyped-def]
    for url in ("/admin/randomization/trial/", f"/admin/randomization/trial/{trial.pk}/change/"):
        page = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en")
        assert page.status_code == 200
        html = page.content.decode()
        assert str(trial.seed) not in html
        assert trial.seed_fingerprint in html


@pytest.mark.django_db
def test_the_log_and_the_cursors_cannot_be_edited_from_the_admin(admin_client, trial, men) -> None:  # type: ignore[no-untyped-def]
    (man,) = men(1)
    assignment = assignment_make(trial=trial, participant=man, strata=LIMA)
    assert admin_client.get("/admin/randomization/assignment/add/").status_code == 403
    delete = f"/admin/randomization/assignment/{assignment.pk}/delete/"
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert admin_client.get("/admin/randomization/stratum/").status_code == 404
    assert admin_client.get("/admin/randomization/assignmentrelease/").status_code == 404

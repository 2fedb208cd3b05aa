"""The allergy check's drug classes: the matcher on its own (allergies as plain rows, no database), its reasons,
and the curated table itself (well-formed, one class per name, the classes a clinician expects)."""
from __future__ import annotations

import re

import pytest

from app.records import drug_classes
from app.records.drug_classes import CLASSES, normalise
from app.records.models import Allergy, Severity
from app.records.services import match_allergies


def allergy(substance: str, reaction: str = "Hives", severity: Severity = Severity.SEVERE, id: int = 1) -> Allergy:
    return Allergy(id=id, substance=substance, reaction=reaction, severity=severity)


@pytest.mark.parametrize("substance, drug, reason", [
    ("Penicillin", "Amoxicillin 500 mg", "Amoxicillin is one of the penicillins"),
    ("Penicillin", "Co-amoxiclav", "Co-amoxiclav is one of the penicillins"),
    ("PCN", "flucloxacillin", "Flucloxacillin is one of the penicillins"),
    ("Sulfa", "Trimethoprim-sulfamethoxazole", "Trimethoprim-sulfamethoxazole is one of the sulfonamide antibiotics"),
    ("Ibuprofen", "Naproxen 250mg tablets", "Naproxen is one of the NSAIDs"),
    ("Lisinopril", "Enalapril", "Enalapril is one of the ACE inhibitors"),
    ("Cefalexin", "Cephalexin", "Cephalexin is one of the cephalosporins"),
    ("Metformin", "Metformin hydrochloride", "Metformin hydrochloride matches the allergen by name"),
    ("Amoxicillin", "amoxicillin trihydrate", "Amoxicillin trihydrate matches the allergen by name"),
])
def test_a_drug_warns_by_class_or_by_name_and_says_why(substance, drug, reason):
    [match] = match_allergies([allergy(substance)], drug)
    assert match.reason == f"{reason}; allergy recorded: {substance} (severe, hives)"


@pytest.mark.parametrize("substance, drug", [
    ("Penicillin", "Azithromycin"),
    ("Cephalosporins", "Amoxicillin"),  # no cross-class warnings
    ("Sulfa", "Trimethoprim 200 mg"),  # trimethoprim alone is not a sulfonamide
    ("Opioids", "Apomorphine"),  # a dopamine agonist: "morphine" only as a substring
    ("Statins", "Nystatin oral suspension"),  # an antifungal
])
def test_a_drug_outside_the_allergy_and_its_class_does_not_warn(substance, drug):
    assert match_allergies([allergy(substance)], drug) == []


def test_each_matching_allergy_is_one_match_and_the_others_none():
    recorded = [allergy("Penicillin", id=1), allergy("Sulfa drugs", "SJS", id=2), allergy("Latex", id=3)]
    matches = match_allergies(recorded, "Amoxicillin")
    assert [m.allergy.id for m in matches] == [1]
    both = match_allergies([allergy("Penicillin and sulfa", "SJS")], "Co-trimoxazole 960 mg")
    assert [m.reason for m in both] == [
        "Co-trimoxazole is one of the sulfonamide antibiotics; allergy recorded: Penicillin and sulfa (severe, SJS)"]


def test_every_class_is_well_formed():
    for drug_class in CLASSES:
        assert drug_class.name and drug_class.synonyms and drug_class.members
        for name in (drug_class.name, *drug_class.synonyms, *drug_class.members):
            assert re.fullmatch(r"[A-Za-z0-9]+([ -][A-Za-z0-9]+)*", name), name
            assert normalise(name) == name.lower().replace("-", " ")
        members = [normalise(m) for m in drug_class.members]
        assert len(members) == len(set(members)), drug_class.name


def test_a_name_belongs_to_one_class_only_and_finds_it():
    owner: dict[str, str] = {}
    for drug_class in CLASSES:
        for name in {normalise(n) for n in (drug_class.name, *drug_class.synonyms, *drug_class.members)}:
            assert owner.setdefault(name, drug_class.name) == drug_class.name, name
            assert drug_classes.classes_named_in(name) == [drug_class]
        for member in drug_class.members:
            assert drug_classes.members_in(f"{member} 10 mg") == {drug_class: member}


def test_the_table_covers_the_classes_a_clinician_expects():
    expected = {
        "penicillins": "amoxicillin co-amoxiclav amoxicillin-clavulanate ampicillin benzylpenicillin "
                       "phenoxymethylpenicillin piperacillin dicloxacillin flucloxacillin nafcillin oxacillin",
        "cephalosporins": "cefalexin cephalexin cefazolin cefuroxime ceftriaxone cefdinir cefixime cefepime "
                          "cefpodoxime ceftazidime",
        "sulfonamide antibiotics": "sulfamethoxazole trimethoprim-sulfamethoxazole co-trimoxazole sulfadiazine "
                                   "sulfasalazine",
        "NSAIDs": "ibuprofen naproxen diclofenac ketorolac indomethacin meloxicam celecoxib aspirin ketoprofen "
                  "piroxicam",
        "ACE inhibitors": "lisinopril enalapril ramipril captopril perindopril quinapril benazepril fosinopril",
        "macrolides": "azithromycin clarithromycin erythromycin",
        "fluoroquinolones": "ciprofloxacin levofloxacin moxifloxacin ofloxacin",
        "tetracyclines": "doxycycline minocycline tetracycline",
        "opioids": "codeine morphine oxycodone hydrocodone hydromorphone tramadol fentanyl",
        "statins": "atorvastatin simvastatin rosuvastatin pravastatin lovastatin",
    }
    by_name = {c.name: c for c in CLASSES}
    for name, members in expected.items():
        assert set(members.split()) <= set(by_name[name].members), name
    assert {"penicillin V", "penicillin G"} <= set(by_name["penicillins"].members)
    assert "acetylsalicylic acid" in by_name["NSAIDs"].members
    assert {"penicillin", "penicillins", "pcn"} <= set(by_name["penicillins"].synonyms)
    assert {"sulfa", "sulfonamide"} <= set(by_name["sulfonamide antibiotics"].synonyms)

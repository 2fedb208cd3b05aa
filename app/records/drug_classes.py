"""Drug classes for the allergy check: a curated table, reviewed by hand, no network and no package.

Where the lists come from: the standard pharmacological classes of the WHO ATC classification (J01C
penicillins, J01D cephalosporins, J01E sulfonamides, M01A NSAIDs with aspirin N02BA, C09A ACE inhibitors,
J01FA macrolides, J01MA fluoroquinolones, J01AA tetracyclines, N02A opioids, C10AA statins), plus members
ATC files elsewhere by use (sulfasalazine A07EC, sulfacetamide S01AB, methadone N07BC). Members are generic
names (INN, and the US/UK spellings in use: cephalexin/cefalexin, sulfa-/sulpha-) as a doctor types them
on a prescription; brand names are not listed.

Each class has:
- `name`, shown to the doctor in the warning ("Amoxicillin is one of the penicillins");
- `synonyms`, what an allergy may be recorded as besides a member ("penicillin", "pcn", "sulfa");
- `members`, the generic drug names in the class, single words or several ("co-amoxiclav",
  "trimethoprim-sulfamethoxazole", "acetylsalicylic acid").

Names are compared after `normalise` (lower case, punctuation dropped) as whole words, so "Co-amoxiclav
625 mg" contains the member "co-amoxiclav" and "Apomorphine" (a dopamine agonist) does not contain the
opioid "morphine".

No cross-class warnings: a penicillin allergy does not warn about a cephalosporin, nor the reverse. The
cross-reactivity is low for most pairs and debated (it depends on the side chain), and a warning that is
usually wrong teaches prescribers to tick it away. Add a rule here only with a clinical reviewer.

To extend: add a member to its class, or a new `DrugClass` to `CLASSES`; generic names only, written as
the warning should show them. A name belongs to one class only (tests/records/test_drug_classes.py checks
the table): file a combination product under the class its allergy risk comes from (co-trimoxazole:
sulfonamide antibiotics).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass


def normalise(name: str) -> str:
    """Lower case words separated by one space, punctuation dropped: "Co-Amoxiclav 625mg" → "co amoxiclav 625mg"."""
    return " ".join(re.findall(r"[a-z0-9]+", (name or "").lower()))


@dataclass(frozen=True)
class DrugClass:
    name: str
    synonyms: tuple[str, ...]
    members: tuple[str, ...]


CLASSES: tuple[DrugClass, ...] = (
    DrugClass("penicillins", ("penicillin", "penicillins", "pcn"), (
        "penicillin", "penicillin V", "penicillin G", "benzylpenicillin", "phenoxymethylpenicillin",
        "amoxicillin", "amoxycillin", "amoxicillin-clavulanate", "co-amoxiclav", "ampicillin", "piperacillin",
        "piperacillin-tazobactam", "dicloxacillin", "flucloxacillin", "cloxacillin", "nafcillin", "oxacillin",
        "temocillin")),
    DrugClass("cephalosporins", ("cephalosporin", "cephalosporins"), (
        "cefalexin", "cephalexin", "cefadroxil", "cefazolin", "cephazolin", "cefuroxime", "cefaclor",
        "cefprozil", "cefoxitin", "ceftriaxone", "cefotaxime", "cefdinir", "cefixime", "cefpodoxime",
        "ceftazidime", "cefepime", "ceftaroline")),
    DrugClass("sulfonamide antibiotics", ("sulfa", "sulpha", "sulfa drugs", "sulpha drugs", "sulfonamide",
                                          "sulfonamides", "sulphonamide", "sulphonamides"), (
        "sulfamethoxazole", "sulphamethoxazole", "trimethoprim-sulfamethoxazole", "sulfamethoxazole-trimethoprim",
        "co-trimoxazole", "sulfadiazine", "sulphadiazine", "sulfasalazine", "sulphasalazine", "sulfacetamide")),
    DrugClass("NSAIDs", ("nsaid", "nsaids", "non-steroidal anti-inflammatory", "non-steroidal anti-inflammatories",
                         "nonsteroidal anti-inflammatory", "nonsteroidal anti-inflammatories"), (
        "ibuprofen", "naproxen", "diclofenac", "ketorolac", "indomethacin", "indometacin", "meloxicam",
        "celecoxib", "etoricoxib", "aspirin", "acetylsalicylic acid", "ketoprofen", "dexketoprofen", "piroxicam",
        "mefenamic acid", "etodolac", "nabumetone")),
    DrugClass("ACE inhibitors", ("ace inhibitor", "ace inhibitors", "acei", "ace-i"), (
        "lisinopril", "enalapril", "ramipril", "captopril", "perindopril", "quinapril", "benazepril", "fosinopril",
        "trandolapril", "moexipril")),
    DrugClass("macrolides", ("macrolide", "macrolides"), (
        "azithromycin", "clarithromycin", "erythromycin")),
    DrugClass("fluoroquinolones", ("fluoroquinolone", "fluoroquinolones", "quinolone", "quinolones"), (
        "ciprofloxacin", "levofloxacin", "moxifloxacin", "ofloxacin", "norfloxacin")),
    DrugClass("tetracyclines", ("tetracyclines",), (
        "doxycycline", "minocycline", "tetracycline", "oxytetracycline", "lymecycline")),
    DrugClass("opioids", ("opioid", "opioids", "opiate", "opiates"), (
        "codeine", "dihydrocodeine", "morphine", "oxycodone", "hydrocodone", "hydromorphone", "tramadol",
        "fentanyl", "pethidine", "meperidine", "tapentadol", "methadone", "buprenorphine")),
    DrugClass("statins", ("statin", "statins"), (
        "atorvastatin", "simvastatin", "rosuvastatin", "pravastatin", "lovastatin", "fluvastatin", "pitavastatin")),
)


def _index() -> tuple[dict[str, DrugClass], dict[str, tuple[DrugClass, str]], int]:
    names: dict[str, DrugClass] = {}
    members: dict[str, tuple[DrugClass, str]] = {}
    for drug_class in CLASSES:
        for name in (drug_class.name, *drug_class.synonyms, *drug_class.members):
            names[normalise(name)] = drug_class
        for member in drug_class.members:
            members[normalise(member)] = (drug_class, member)
    return names, members, max(len(key.split()) for key in names)


# Built once at import: every name an allergy may give (class, synonym, member) → its class; every
# member → (class, member as written in the table); the longest name in words.
_NAMES, _MEMBERS, _LONGEST = _index()


def _phrases(text: str) -> Iterator[str]:
    """Every run of up to _LONGEST consecutive words of the normalised text, the longest first at each word
    (so "penicillin V potassium" gives "penicillin v" before "penicillin")."""
    words = normalise(text).split()
    for start in range(len(words)):
        for end in range(min(start + _LONGEST, len(words)), start, -1):
            yield " ".join(words[start:end])


def classes_named_in(substance: str) -> list[DrugClass]:
    """The classes an allergy names: by class name, synonym or member, as whole words ("Penicillin",
    "sulfa drugs", "Ibuprofen")."""
    found = []
    for phrase in _phrases(substance):
        if (drug_class := _NAMES.get(phrase)) and drug_class not in found:
            found.append(drug_class)
    return found


def members_in(drug_name: str) -> dict[DrugClass, str]:
    """Class → the first member of it the drug name contains as whole words ("Amoxicillin 500 mg capsules" →
    {penicillins: "amoxicillin"})."""
    found: dict[DrugClass, str] = {}
    for phrase in _phrases(drug_name):
        if phrase in _MEMBERS:
            drug_class, member = _MEMBERS[phrase]
            found.setdefault(drug_class, member)
    return found

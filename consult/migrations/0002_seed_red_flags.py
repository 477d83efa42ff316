"""Every hospital (existing and newly provisioned) starts with the general triage form, the
well-known red flags and rule version 1."""

from django.db import migrations


# The defaults as of this migration: a frozen copy of consult/defaults.py, because a
# migration must not import runtime code (later edits there must not change what this
# migration seeds).

# (value, 中文, English)
SYMPTOMS = [
    ("chest_pain", "胸痛或胸闷", "Chest pain or tightness"),
    ("short_of_breath", "气短、喘不上气", "Shortness of breath"),
    ("sweating", "大汗淋漓", "Heavy sweating"),
    ("face_drooping", "一侧面部下垂或口角歪斜", "Face drooping on one side"),
    ("arm_weakness", "一侧手臂或腿无力、麻木", "Weakness or numbness of an arm or leg"),
    ("speech_difficulty", "说话含糊或听不懂别人说话", "Slurred speech or trouble understanding"),
    ("heavy_bleeding", "大量出血、止不住", "Heavy bleeding that does not stop"),
    ("severe_breathing_difficulty", "呼吸非常困难、说不出完整句子",
     "Severe difficulty breathing, cannot speak full sentences"),
    ("fever", "发热", "Fever"),
    ("suicidal_thoughts", "有伤害自己或轻生的想法", "Thoughts of harming yourself or suicide"),
    ("vaginal_bleeding", "阴道出血", "Vaginal bleeding"),
    ("severe_abdominal_pain", "剧烈腹痛", "Severe abdominal pain"),
    ("cough", "咳嗽", "Cough"),
    ("sore_throat", "咽痛", "Sore throat"),
    ("rash", "皮疹", "Rash"),
    ("headache", "头痛", "Headache"),
    ("other", "其他不适", "Something else"),
]

GENERAL_FORM = {"code": "general", "name": "通用预问诊", "name_en": "General pre-screening"}

QUESTIONS = [
    {"code": "symptoms", "text": "现在有下列哪些情况？（可多选）",
     "text_en": "Which of these do you have now? (choose all that apply)", "kind": "multi",
     "choices": [list(s) for s in SYMPTOMS], "required": True, "sort_order": 10},
    {"code": "temperature", "text": "最高体温（℃，未测可不填）",
     "text_en": "Highest temperature (°C, leave empty if not measured)", "kind": "number",
     "unit": "℃", "min_value": 30, "max_value": 45, "required": False, "sort_order": 20},
    {"code": "duration", "text": "这些不适持续了多久？", "text_en": "How long has this been going on?",
     "kind": "duration", "unit": "h", "min_value": 0, "max_value": 87600, "required": True,
     "sort_order": 30},
    {"code": "pregnant", "text": "目前是否怀孕？", "text_en": "Are you pregnant?", "kind": "choice",
     "choices": [["yes", "是", "Yes"], ["no", "否", "No"], ["na", "不适用", "Not applicable"]],
     "required": True, "sort_order": 40},
]

_ER = "请立即拨打 120 或前往最近的急诊科，不要等待线上回复。"
_ER_EN = "Call 120 or go to the nearest emergency department now; do not wait for an online reply."


def _has(value: str) -> dict:
    return {"q": "symptoms", "op": "has", "value": value}


RED_FLAGS = [
    {"code": "chest-pain-breathless", "name": "胸痛伴气短", "name_en": "Chest pain with breathlessness",
     "conditions": {"all": [_has("chest_pain"), _has("short_of_breath")]}},
    {"code": "chest-pain-sweating", "name": "胸痛伴大汗", "name_en": "Chest pain with sweating",
     "conditions": {"all": [_has("chest_pain"), _has("sweating")]}},
    {"code": "stroke-fast", "name": "卒中征象（FAST）", "name_en": "Stroke signs (FAST)",
     "conditions": {"q": "symptoms", "op": "has_any",
                    "value": ["face_drooping", "arm_weakness", "speech_difficulty"]}},
    {"code": "heavy-bleeding", "name": "大出血", "name_en": "Heavy bleeding",
     "conditions": _has("heavy_bleeding")},
    {"code": "breathing-difficulty", "name": "严重呼吸困难", "name_en": "Severe breathing difficulty",
     "conditions": _has("severe_breathing_difficulty")},
    {"code": "infant-fever", "name": "3 个月以下婴儿发热", "name_en": "Fever in an infant under 3 months",
     "conditions": {"all": [{"q": "age_days", "op": "lt", "value": 90},
                            {"any": [_has("fever"), {"q": "temperature", "op": "gte",
                                                     "value": 38}]}]}},
    {"code": "suicidal-thoughts", "name": "自伤或轻生念头", "name_en": "Suicidal thoughts",
     "conditions": _has("suicidal_thoughts"),
     "advice": "请立即拨打 120 或前往急诊；也可拨打心理援助热线 12356。你并不孤单。",
     "advice_en": "Call 120 or go to an emergency department now; you can also call the "
                  "mental-health helpline 12356. You are not alone."},
    {"code": "pregnancy-bleeding-pain", "name": "孕期出血或剧烈腹痛",
     "name_en": "Pregnancy with bleeding or severe pain",
     "conditions": {"all": [{"q": "pregnant", "op": "eq", "value": "yes"},
                            {"q": "symptoms", "op": "has_any",
                             "value": ["vaginal_bleeding", "severe_abdominal_pain"]}]}},
]

# Not emergencies, but not for a chat either.
IN_PERSON = [
    {"code": "fever-over-3-days", "name": "发热超过 3 天", "name_en": "Fever for more than 3 days",
     "conditions": {"all": [{"any": [_has("fever"), {"q": "temperature", "op": "gte", "value": 38}]},
                            {"q": "duration", "op": "gt", "value": 72}]},
     "advice": "发热已超过 3 天，建议到医院当面就诊。",
     "advice_en": "A fever for more than 3 days should be seen in person.",
     "department": "internal"},
]


def _seed_defaults(apps) -> None:
    """Create the general form, its questions, the red flags and the first rule version where
    missing, with this migration's historical models."""
    TriageForm = apps.get_model("consult", "TriageForm")  # noqa: N806
    TriageQuestion = apps.get_model("consult", "TriageQuestion")  # noqa: N806
    TriageRule = apps.get_model("consult", "TriageRule")  # noqa: N806
    TriageRuleVersion = apps.get_model("consult", "TriageRuleVersion")  # noqa: N806
    ConsultSettings = apps.get_model("consult", "ConsultSettings")  # noqa: N806
    Department = apps.get_model("registration", "Department")  # noqa: N806

    ConsultSettings.objects.get_or_create(pk=1)
    form, _ = TriageForm.objects.get_or_create(
        code=GENERAL_FORM["code"], defaults={"name": GENERAL_FORM["name"],
                                             "name_en": GENERAL_FORM["name_en"]})
    # One INSERT per table for whatever is missing (this runs in every new hospital's schema,
    # where one get_or_create per row cost a tenth of provisioning); rows that exist, or that a
    # concurrent seed adds first, are left as they are.
    have = set(TriageQuestion.objects.filter(form=form).values_list("code", flat=True))
    TriageQuestion.objects.bulk_create([
        TriageQuestion(form=form, **q) for q in QUESTIONS if q["code"] not in have],
        ignore_conflicts=True)
    have = set(TriageRule.objects.values_list("code", flat=True))
    rules = [TriageRule(
        code=spec["code"], name=spec["name"], name_en=spec["name_en"], outcome="emergency_now",
        conditions=spec["conditions"], advice=spec.get("advice", _ER),
        advice_en=spec.get("advice_en", _ER_EN)) for spec in RED_FLAGS if spec["code"] not in have]
    rules += [TriageRule(
        code=spec["code"], name=spec["name"], name_en=spec["name_en"], outcome="visit_in_person",
        conditions=spec["conditions"], advice=spec["advice"], advice_en=spec["advice_en"],
        suggest_department=Department.objects.filter(code=spec["department"]).first())
        for spec in IN_PERSON if spec["code"] not in have]
    TriageRule.objects.bulk_create(rules, ignore_conflicts=True)
    if not TriageRuleVersion.objects.exists():
        TriageRuleVersion.objects.create(number=1, note="seeded red flags",
                                         rules=_snapshot(TriageRule.objects.filter(is_active=True)))


def _snapshot(rules) -> list[dict]:
    """The frozen, JSON copy of rules that a version keeps."""
    return [{"code": r.code, "name": r.name, "name_en": r.name_en, "outcome": r.outcome,
             "conditions": r.conditions, "advice": r.advice, "advice_en": r.advice_en,
             "suggest_department_id": r.suggest_department_id}
            for r in rules.order_by("code")]


def seed(apps, schema_editor):
    _seed_defaults(apps)
    # Check the seeded rows' foreign keys now rather than at commit: when provisioning runs
    # inside an outer transaction and fails, the schema is dropped in that same transaction,
    # and PostgreSQL refuses to drop tables with pending deferred checks.
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")


class Migration(migrations.Migration):
    dependencies = [
        ("consult", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(seed, migrations.RunPython.noop, elidable=True),
    ]

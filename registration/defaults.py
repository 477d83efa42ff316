"""The department tree every new hospital starts with (staff edit it in admin)."""

# (code, 中文名, English name, children)
DEFAULT_DEPARTMENTS: list[tuple[str, str, str, list[tuple[str, str, str]]]] = [
    ("internal", "内科", "Internal Medicine", [
        ("cardiology", "心血管内科", "Cardiology"),
        ("respiratory", "呼吸内科", "Respiratory Medicine"),
        ("gastro", "消化内科", "Gastroenterology"),
        ("neurology", "神经内科", "Neurology"),
        ("endocrine", "内分泌科", "Endocrinology"),
    ]),
    ("surgery", "外科", "Surgery", [
        ("general-surgery", "普通外科", "General Surgery"),
        ("orthopedics", "骨科", "Orthopedics"),
        ("urology", "泌尿外科", "Urology"),
    ]),
    ("obgyn", "妇产科", "Obstetrics and Gynecology", [
        ("gynecology", "妇科", "Gynecology"),
        ("obstetrics", "产科", "Obstetrics"),
    ]),
    ("pediatrics", "儿科", "Pediatrics", []),
    ("ent", "耳鼻喉科", "Otolaryngology (ENT)", []),
    ("ophthalmology", "眼科", "Ophthalmology", []),
    ("dermatology", "皮肤科", "Dermatology", []),
    ("stomatology", "口腔科", "Stomatology", []),
    ("tcm", "中医科", "Traditional Chinese Medicine", []),
    ("emergency", "急诊科", "Emergency", []),
]

"""The fictional demo hospitals and accounts that `seed_demo` creates (`demo_info` lists them)."""

PLATFORM_DOMAINS = ["localhost", "127.0.0.1"]

OPERATOR = {"phone": "13900000000", "password": "portal-demo-2026", "name": "平台运营"}

HOSPITALS = [
    {
        "code": "binjiang", "name": "滨江市第一人民医院", "name_en": "Binjiang First People's Hospital",
        "city": "滨江", "level": "3A", "domain": "binjiang.localhost",
        "address": "滨江市江南大道 88 号", "phone": "0571-00000001",
        "intro": "滨江市第一人民医院是一所虚构的三级甲等综合医院，用于演示平台功能。",
        "intro_en": "A fictional Grade III Class A general hospital used to demonstrate the platform.",
        "admin": {"phone": "13900000001", "password": "binjiang-admin-2026", "name": "滨江管理员"},
    },
    {
        "code": "qinghe", "name": "青禾大学附属医院", "name_en": "Qinghe University Hospital",
        "city": "青禾", "level": "3A", "domain": "qinghe.localhost",
        "address": "青禾市大学路 1 号", "phone": "0755-00000002",
        "intro": "青禾大学附属医院是一所虚构的大学附属医院，用于演示平台功能。",
        "intro_en": "A fictional university hospital used to demonstrate the platform.",
        "admin": {"phone": "13900000002", "password": "qinghe-admin-2026", "name": "青禾管理员"},
    },
]

PATIENT = {
    "phone": "13800138000", "password": "patient-demo-2026", "name": "张伟",
    # Fictional resident ID numbers with valid GB 11643 check digits.
    "family": [
        {"name": "张伟", "relation": "self", "id_number": "110101199003071233"},
        {"name": "张小雨", "relation": "child", "id_number": "110101201806150023"},
    ],
}

# An unpaid clinic bill for the demo patient at the first hospital (amounts in fen).
CLINIC_BILL_ITEMS = [
    {"name": "心电图", "item_class": "A", "unit_price_fen": 4500, "quantity": 1},
    {"name": "血脂四项", "item_class": "A", "unit_price_fen": 8800, "quantity": 1},
    {"name": "阿托伐他汀钙片 20mg×7", "item_class": "B", "unit_price_fen": 3260, "quantity": 2},
    {"name": "鱼油软胶囊", "item_class": "C", "unit_price_fen": 6800, "quantity": 1},
]

# Where patients go for the departments the demo doctors work in (set only where staff left the
# location empty).
DEPARTMENT_LOCATIONS = {
    "cardiology": "门诊楼 3 楼 A 区",
    "respiratory": "门诊楼 3 楼 B 区",
    "gastro": "门诊楼 4 楼 A 区",
    "pediatrics": "儿科楼 1 楼",
    "orthopedics": "门诊楼 2 楼 C 区",
    "dermatology": "门诊楼 5 楼 B 区",
}

# Fictional doctors of each demo hospital (by hospital code) and their weekly clinic sessions:
# (weekday 0 = Monday, period, start, end, slice minutes, patients per slice).
DOCTORS = {
    "binjiang": [
        {"department": "cardiology", "name": "陈立新", "name_en": "Chen Lixin", "title": "chief",
         "specialties": "冠心病、高血压、心力衰竭",
         "intro": "心血管内科主任，从事心血管疾病诊治三十年（虚构人物）。",
         "sessions": [(0, "am", "08:00", "11:30", 30, 4), (3, "am", "08:00", "11:30", 30, 4)]},
        {"department": "cardiology", "name": "林晓雯", "name_en": "Lin Xiaowen",
         "title": "attending", "specialties": "心律失常、心脏康复",
         "intro": "擅长心律失常的药物治疗与随访（虚构人物）。",
         "sessions": [(1, "pm", "13:30", "16:30", 30, 5), (4, "am", "08:00", "11:30", 30, 5),
                      (5, "am", "08:00", "11:00", 30, 5)]},
        {"department": "respiratory", "name": "周海涛", "name_en": "Zhou Haitao",
         "title": "associate", "specialties": "慢性阻塞性肺疾病、哮喘",
         "intro": "呼吸内科副主任医师（虚构人物）。",
         "sessions": [(0, "pm", "13:30", "16:30", 30, 5), (2, "am", "08:00", "11:30", 30, 5)]},
        {"department": "pediatrics", "name": "吴佳怡", "name_en": "Wu Jiayi", "title": "attending",
         "specialties": "儿童呼吸道感染、生长发育",
         "intro": "儿科主治医师，擅长儿童常见病（虚构人物）。",
         "sessions": [(1, "am", "08:00", "11:30", 30, 6), (3, "pm", "13:30", "16:30", 30, 6),
                      (6, "am", "08:00", "11:00", 30, 6)]},
        {"department": "orthopedics", "name": "赵振宇", "name_en": "Zhao Zhenyu",
         "title": "resident", "specialties": "运动损伤、骨折复查",
         "intro": "骨科医师（虚构人物）。",
         "sessions": [(2, "pm", "13:30", "16:30", 30, 6), (4, "pm", "13:30", "16:30", 30, 6)]},
    ],
    "qinghe": [
        {"department": "cardiology", "name": "郑宏远", "name_en": "Zheng Hongyuan",
         "title": "associate", "specialties": "高血压、血脂异常",
         "intro": "心血管内科副主任医师（虚构人物）。",
         "sessions": [(1, "am", "08:00", "11:30", 30, 5), (4, "pm", "13:30", "16:30", 30, 5)]},
        {"department": "gastro", "name": "何静", "name_en": "He Jing", "title": "chief",
         "specialties": "胃食管反流、炎症性肠病",
         "intro": "消化内科主任医师，大学教授（虚构人物）。",
         "sessions": [(0, "am", "08:00", "11:30", 30, 4), (2, "pm", "13:30", "16:30", 30, 4)]},
        {"department": "dermatology", "name": "孙一鸣", "name_en": "Sun Yiming",
         "title": "attending", "specialties": "湿疹、痤疮、荨麻疹",
         "intro": "皮肤科主治医师（虚构人物）。",
         "sessions": [(3, "am", "08:00", "11:30", 30, 6), (5, "am", "08:00", "11:00", 30, 6)]},
        {"department": "pediatrics", "name": "马思远", "name_en": "Ma Siyuan", "title": "resident",
         "specialties": "儿童发热、腹泻",
         "intro": "儿科医师（虚构人物）。",
         "sessions": [(0, "pm", "13:30", "16:30", 30, 6), (2, "am", "08:00", "11:30", 30, 6),
                      (6, "am", "08:00", "11:00", 30, 6)]},
    ],
}

# Online consultation and records at the first hospital: a cardiologist who answers online
# (with a doctor login for the workbench) and a lab report with abnormal values for the demo
# patient.
CONSULT_DOCTOR = {"doctor": "林晓雯", "fee_fen": 3000,
                  "account": {"phone": "13900000011", "password": "doctor-demo-2026",
                              "name": "林晓雯"}}
LAB_REPORT = {
    "external_id": "demo-lab-0001", "title": "血脂四项", "doctor_name": "陈立新",
    "department": "cardiology",
    "items": [
        {"name": "总胆固醇 (TC)", "code": "TC", "value": "6.21", "unit": "mmol/L",
         "reference_range": "2.80-5.20"},
        {"name": "甘油三酯 (TG)", "code": "TG", "value": "1.35", "unit": "mmol/L",
         "reference_range": "0.45-1.70"},
        {"name": "高密度脂蛋白胆固醇 (HDL-C)", "code": "HDL", "value": "1.12", "unit": "mmol/L",
         "reference_range": ">1.04"},
        {"name": "低密度脂蛋白胆固醇 (LDL-C)", "code": "LDL", "value": "4.05", "unit": "mmol/L",
         "reference_range": "<3.37"},
    ],
}

# A partner (a city-service app, say) granted both demo hospitals with every scope, and a fixed
# API key so that docs/partner-api.md's curl session works as printed. Development only, like every
# password above.
PARTNER = {"name": "演示合作方（城市服务）", "key": "hpk_demo0000_local-development-only-not-secret"}

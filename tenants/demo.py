"""The fictional demo hospitals and accounts that `seed_demo` creates (listed in the README)."""

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

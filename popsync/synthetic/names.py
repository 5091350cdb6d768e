"""Vietnamese name tables (surnames, middle and given names with their shares) and foreign names."""

from __future__ import annotations

import numpy as np

# Family names with national shares in percent (Nguyễn ≈ 38 %, top 14 ≈ 90 %). Hoàng/Huỳnh and
# Vũ/Võ are one family name spelled by region: the southern spelling is chosen in ``people``.
SURNAMES = {
    "Nguyễn": 38.0, "Trần": 11.0, "Lê": 9.5, "Phạm": 7.0, "Hoàng": 5.1, "Huỳnh": 0.0,
    "Phan": 4.5, "Vũ": 3.9, "Võ": 0.0, "Đặng": 2.1, "Bùi": 2.0, "Đỗ": 1.4, "Hồ": 1.3,
    "Ngô": 1.3, "Dương": 1.0, "Lý": 0.5,
    # The long tail shares the remaining 11.4 %.
    "Đào": 0.6, "Đoàn": 0.6, "Vương": 0.3, "Trịnh": 0.6, "Trương": 0.7, "Lâm": 0.5,
    "Phùng": 0.3, "Mai": 0.5, "Tô": 0.3, "Hà": 0.6, "Tạ": 0.3, "Lương": 0.5, "Đinh": 0.7,
    "Cao": 0.5, "Lưu": 0.4, "Châu": 0.3, "Thái": 0.3, "Quách": 0.2, "Kiều": 0.2, "Triệu": 0.3,
    "La": 0.2, "Tăng": 0.2, "Lại": 0.2, "Chu": 0.3, "Giang": 0.2, "Diệp": 0.1, "Thân": 0.2,
    "Nông": 0.3, "Lò": 0.2, "Hứa": 0.2, "Doãn": 0.2, "Kim": 0.1, "Mạc": 0.1, "Tống": 0.2,
    "Từ": 0.1, "Khổng": 0.1, "Nghiêm": 0.2, "Phí": 0.1,
}
# Share of Hoàng spelled Huỳnh and of Vũ spelled Võ, by region of birth.
SOUTHERN_SPELLING = {
    ("Hoàng", "Huỳnh"): {"north": 0.05, "central": 0.45, "south": 0.85},
    ("Vũ", "Võ"): {"north": 0.08, "central": 0.7, "south": 0.9},
}

# Middle names: first entry is Văn / Thị, far more common among people born before 2000.
MIDDLE_MALE = {
    "Văn": 35, "Đức": 7, "Minh": 7, "Quang": 5, "Hữu": 5, "Công": 4, "Thanh": 4, "Xuân": 3,
    "Đình": 4, "Ngọc": 3, "Anh": 2, "Hoàng": 2, "Tuấn": 2, "Quốc": 4, "Trung": 2, "Hải": 2,
    "Thành": 3, "Gia": 3, "Bảo": 2, "Duy": 2, "Khắc": 1, "Tiến": 2, "Mạnh": 1, "Trọng": 2,
    "Thế": 2, "Nhật": 2, "Đăng": 2,
}
MIDDLE_FEMALE = {
    "Thị": 50, "Ngọc": 6, "Thu": 5, "Thanh": 5, "Minh": 3, "Hồng": 3, "Phương": 3, "Thùy": 3,
    "Mai": 2, "Kim": 3, "Bảo": 2, "Khánh": 2, "Hoài": 1, "Diệu": 1, "Như": 2, "Mỹ": 2,
    "Quỳnh": 2, "Hải": 1, "Bích": 2, "Thảo": 1, "Ánh": 1, "Tường": 1, "Vân": 1,
}
# Weight of Văn / Thị for people born in 2000 or later (the rest of the table is unchanged).
MIDDLE_COMMON_WEIGHT_YOUNG = {"Văn": 8, "Thị": 12}

GIVEN_MALE = {
    "Anh": 5, "Hùng": 4, "Dũng": 4, "Tuấn": 4, "Minh": 4, "Hải": 3, "Nam": 4, "Long": 3,
    "Sơn": 3, "Thắng": 3, "Cường": 3, "Hoàng": 2, "Huy": 4, "Khoa": 2, "Đức": 2, "Trung": 3,
    "Hiếu": 3, "Phúc": 2, "Quân": 3, "Bình": 3, "Tâm": 2, "Thành": 3, "Tùng": 2, "Việt": 2,
    "Hòa": 4, "Toàn": 2, "Lâm": 1, "Phong": 2, "Thịnh": 2, "Khánh": 2, "Tài": 2, "Vinh": 2,
    "Lộc": 2, "Nghĩa": 2, "Thái": 1, "Tú": 1, "Kiên": 2, "Đạt": 3, "Duy": 2, "Hưng": 2,
    "Quang": 2, "Tiến": 2, "Thụy": 1, "Bảo": 2, "Khôi": 2, "Hậu": 1, "Định": 1, "Lợi": 1,
    "Phát": 2, "Trí": 2, "Tín": 1, "Vũ": 2, "Hiệp": 1, "Quý": 1, "Thủy": 1,
}
GIVEN_FEMALE = {
    "Lan": 4, "Hương": 4, "Hoa": 3, "Hà": 4, "Linh": 5, "Trang": 5, "Thảo": 4, "Hằng": 3,
    "Ngọc": 3, "Anh": 5, "Mai": 3, "Phương": 3, "Thủy": 4, "Thúy": 3, "Hòa": 2, "Nga": 3,
    "Huyền": 3, "Dung": 2, "Nhung": 2, "Yến": 3, "Vân": 2, "Hạnh": 2, "Loan": 2, "Oanh": 2,
    "Liên": 2, "Hiền": 3, "Nhi": 3, "Vy": 3, "Hân": 2, "Ngân": 2, "Quyên": 1, "Trâm": 2,
    "Uyên": 2, "Giang": 2, "Diệp": 1, "Tuyết": 1, "Thư": 2, "Châu": 1, "Hồng": 2, "Xuân": 1,
    "Nhàn": 1, "Tâm": 2, "Lệ": 1, "Hoài": 1, "Thanh": 2, "My": 2, "Chi": 2, "Huệ": 1,
    "Thụy": 1,
}
# Two-syllable given names, more common among the young.
GIVEN2_MALE = {
    "Gia Huy": 3, "Minh Khôi": 3, "Bảo Long": 2, "Đức Anh": 3, "Minh Quân": 2, "Anh Tuấn": 2,
    "Quốc Bảo": 2, "Hoàng Nam": 2, "Tuấn Kiệt": 2, "Nhật Minh": 2, "Đăng Khoa": 2,
}
GIVEN2_FEMALE = {
    "Bảo Ngọc": 3, "Minh Anh": 3, "Ngọc Hân": 2, "Khánh Linh": 3, "Phương Anh": 3,
    "Thu Trang": 2, "Thanh Hương": 2, "Kim Ngân": 2, "Bảo Châu": 2, "Hoài An": 2, "Thanh Thủy": 2,
}
# Share of people with a two-syllable given name, born before / from 2000.
GIVEN2_SHARE = (0.08, 0.25)
# Number of middle names 0, 1, 2 (a person with a two-syllable given name has at most one).
MIDDLE_COUNT_SHARES = (0.04, 0.86, 0.10)

# Foreign workers, written as in their passports (family name first, upper case).
FOREIGN_FAMILY = (
    "KIM", "LEE", "PARK", "CHOI", "JUNG", "WANG", "LI", "ZHANG", "LIU", "CHEN", "LIN", "HUANG",
    "TANAKA", "SATO", "SUZUKI", "TAKAHASHI", "SMITH", "BROWN", "MARTIN", "SINGH",
)
FOREIGN_GIVEN = (
    "MIN JUN", "SEO YEON", "JI HOON", "YOUNG HO", "WEI", "NA", "JIE", "YANG", "CHIH HAO",
    "MEI LING", "HIROSHI", "YUKI", "KENJI", "AKIRA", "JOHN", "DAVID", "ANNA", "MARIA", "RAJ",
)

# Tone-mark placement: the population writes the mark on the first vowel of an open oa/oe/uy
# syllable (Hòa, Thủy); older software put it on the second (Hoà, Thuỷ).
OLD_TONE_STYLE = {
    first + "a": "o" + second
    for first, second in zip("òóỏõọ", "àáảãạ", strict=True)
} | {
    first + "e": "o" + second
    for first, second in zip("òóỏõọ", "èéẻẽẹ", strict=True)
} | {
    first + "y": "u" + second
    for first, second in zip("ùúủũụ", "ỳýỷỹỵ", strict=True)
}


def table(weights: dict[str, float]) -> tuple[list[str], np.ndarray]:
    """The names of a weight table and their cumulative probabilities (for inverse-CDF draws)."""
    names = list(weights)
    shares = np.array([weights[name] for name in names], dtype=float)
    return names, np.cumsum(shares / shares.sum())

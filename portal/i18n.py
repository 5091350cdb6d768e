"""Portal labels in Vietnamese (default) and English, and number formatting for each."""

from __future__ import annotations

from popsync.labels import REASON_LABELS, STATUS_LABELS

LANGUAGES = ("vi", "en")

LABELS: dict[str, tuple[str, str]] = {
    "title": ("Đồng bộ dữ liệu BHXH với CSDL quốc gia về dân cư",
              "VSS participants synchronized with the National Population Database"),
    "ranking": ("Bảng xếp hạng", "Ranking"),
    "ranking_title": ("Xếp hạng tỉnh, thành phố theo tỷ lệ đồng bộ",
                      "Provinces ranked by synchronization rate"),
    "province": ("Tỉnh, thành phố", "Province"),
    "code": ("Mã", "Code"),
    "participants": ("Số người tham gia", "Participants"),
    "sync_rate": ("Tỷ lệ đồng bộ", "Sync rate"),
    "rank": ("Hạng", "Rank"),
    "change": ("Thay đổi so với đêm trước", "Change since previous night"),
    "scheme": ("Đơn vị hành chính", "Province scheme"),
    "scheme_63": ("63 tỉnh, thành phố (trước 1/7/2025)", "63 provinces (before 1 July 2025)"),
    "scheme_34": ("34 tỉnh, thành phố (từ 1/7/2025)", "34 provinces (since 1 July 2025)"),
    "line": ("Loại hình bảo hiểm", "Insurance line"),
    "line_all": ("Tất cả", "All"),
    "line_si_compulsory": ("BHXH bắt buộc", "Compulsory social insurance"),
    "line_si_voluntary": ("BHXH tự nguyện", "Voluntary social insurance"),
    "line_hi": ("BHYT", "Health insurance"),
    "line_ui": ("BHTN", "Unemployment insurance"),
    "national_trend": ("Tỷ lệ đồng bộ toàn quốc qua các đêm",
                       "National sync rate over recent runs"),
    "province_bars": ("Tỷ lệ đồng bộ theo tỉnh, thành phố", "Sync rate by province"),
    "publication_of": ("Số liệu công bố ngày", "Figures published for"),
    "no_run": ("Chưa có lần chạy nào được công bố: chưa có số liệu.",
               "No run has been published yet: there are no figures."),
    "latest_failed": ("Lần chạy gần nhất (ngày {run_date}) bị lỗi lúc {at}. Đang hiển thị số liệu "
                      "công bố gần nhất còn hợp lệ.",
                      "The latest run (for {run_date}) failed at {at}. Showing the last good "
                      "publication."),
    "latest_failed_none": ("Lần chạy gần nhất (ngày {run_date}) bị lỗi lúc {at}; chưa có số liệu "
                           "nào được công bố.",
                           "The latest run (for {run_date}) failed at {at}; nothing has been "
                           "published yet."),
    "running": ("Một lần chạy (ngày {run_date}) đang thực hiện.",
                "A run (for {run_date}) is in progress."),
    "incomplete": ("Số liệu công bố ngày {run_dates} chưa đầy đủ trên máy chủ. Đang hiển thị số "
                   "liệu công bố đầy đủ gần nhất.",
                   "The publication of {run_dates} is incomplete on the server. Showing the last "
                   "complete publication."),
    "failure_message": ("Thông báo lỗi", "Error message"),
    "by_status": ("Theo trạng thái", "By status"),
    "by_reason": ("Theo lý do", "By reason"),
    "status": ("Trạng thái", "Status"),
    "reason": ("Lý do", "Reason"),
    "count": ("Số lượng", "Count"),
    "by_line": ("Theo loại hình bảo hiểm", "By insurance line"),
    "trend": ("Diễn biến tỷ lệ đồng bộ", "Sync rate trend"),
    "run_date": ("Ngày chạy", "Run date"),
    "downloads": ("Danh sách chưa đồng bộ", "Unsynchronized participants"),
    "download_xlsx": ("Tải về Excel (.xlsx)", "Download Excel (.xlsx)"),
    "download_csv": ("Tải về CSV", "Download CSV"),
    "no_lists": ("Không có danh sách cho tỉnh này trong lần công bố này.",
                 "There is no list for this province in this publication."),
    "no_figures": ("Tỉnh này không có người tham gia trong lần công bố này.",
                   "This province has no participants in this publication."),
    "merged_into": ("Thuộc đơn vị mới", "Part of the new unit"),
    "merged_from": ("Gồm các tỉnh cũ", "Formed from"),
    "login": ("Đăng nhập", "Log in"),
    "logout": ("Đăng xuất", "Log out"),
    "username": ("Tên đăng nhập", "Username"),
    "password": ("Mật khẩu", "Password"),
    "login_failed": ("Sai tên đăng nhập hoặc mật khẩu.", "Wrong username or password."),
    "login_throttled": ("Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau {seconds} giây.",
                        "Too many failed logins. Try again in {seconds} seconds."),
    "csrf_failed": ("Biểu mẫu đã hết hạn, vui lòng thử lại.",
                    "The form expired, please try again."),
    "logged_in_as": ("Đăng nhập với tên", "Logged in as"),
    "role_leadership": ("Lãnh đạo", "Leadership"),
    "role_office": ("Văn phòng tỉnh", "Provincial office"),
    "role_engineer": ("Kỹ sư dữ liệu", "Data engineer"),
    "role_reviewer": ("Người thẩm định", "Reviewer"),
    "review": ("Thẩm định", "Review"),
    "review_title": ("Hàng chờ thẩm định", "Review queue"),
    "review_intro": ("Các dòng cần người quyết định: chưa chắc chắn (cần xác minh) hoặc liên "
                     "kết bị văn phòng tỉnh phản đối. Quyết định được áp dụng từ đêm chạy tiếp "
                     "theo.",
                     "Rows a person must decide: uncertain (needs review) or a link an office "
                     "disputed. A decision applies from the next night."),
    "review_empty": ("Không còn dòng nào cần thẩm định.", "Nothing left to review."),
    "review_count": ("dòng chờ thẩm định", "rows to review"),
    "review_disputed": ("Bị phản đối", "Disputed"),
    "review_probability": ("Xác suất khớp", "Match probability"),
    "review_candidate": ("Ứng viên tốt nhất", "Best candidate"),
    "review_waterfall": ("Trọng số khớp theo từng trường (bit)",
                         "Match weight field by field (bits)"),
    "review_total": ("Tổng trọng số", "Total weight"),
    "review_prior": ("Tiên nghiệm", "Prior"),
    "review_field_name": ("Họ tên", "Name"),
    "review_field_birth_date": ("Ngày sinh", "Birth date"),
    "review_field_gender": ("Giới tính", "Gender"),
    "review_field_national_id": ("Số định danh", "Personal ID"),
    "review_field_province": ("Tỉnh", "Province"),
    "review_other_candidates": ("Các ứng viên khác", "Other candidates"),
    "review_decide": ("Quyết định", "Decision"),
    "review_note": ("Ghi chú (lý do)", "Note (why)"),
    "review_keys": ("Phím tắt: c = cùng một người, r = không phải người này, n = không có "
                    "trong CSDL dân cư, j = dòng tiếp theo",
                    "Keys: c = same person, r = not this person, n = not in the population "
                    "database, j = next row"),
    "review_next": ("Dòng tiếp theo", "Next row"),
    "review_history": ("Các quyết định", "Decisions"),
    "decision_confirmed": ("Cùng một người", "Same person"),
    "decision_rejected": ("Không phải người này", "Not this person"),
    "decision_not_in_population": ("Không có trong CSDL dân cư", "Not in the population database"),
    "decision_revoked": ("đã thu hồi", "revoked"),
    "review_log_title": ("Nhật ký quyết định", "Decision log"),
    "review_log_intro": ("Mọi quyết định trong phạm vi của bạn, mới nhất trước. Thu hồi một "
                         "quyết định nhầm: đêm sau không áp dụng nữa, lịch sử vẫn giữ lại.",
                         "Every decision in your scope, newest first. Revoke a mistaken one: "
                         "the next night stops applying it; the history keeps it."),
    "review_log_all": ("Tất cả", "All"),
    "review_log_standing": ("Đang có hiệu lực", "Standing"),
    "review_log_count": ("quyết định", "decisions"),
    "review_log_when": ("Thời điểm", "When"),
    "review_log_who": ("Người quyết định", "Reviewer"),
    "review_revoke": ("Thu hồi", "Revoke"),
    "review_revoke_why": ("Lý do thu hồi", "Why revoke"),
    "runs": ("Các lần chạy", "Runs"),
    "runs_title": ("Các lần chạy hằng đêm", "Nightly runs"),
    "run": ("Lần chạy", "Run"),
    "run_status": ("Trạng thái", "Status"),
    "run_started": ("Bắt đầu (UTC)", "Started (UTC)"),
    "run_finished": ("Kết thúc (UTC)", "Finished (UTC)"),
    "run_duration": ("Thời gian", "Duration"),
    "run_message": ("Thông báo", "Message"),
    "run_published": ("Đã công bố", "Published"),
    "run_stopped_by": ("Dừng bởi kiểm tra", "Stopped by gate"),
    "run_status_running": ("Đang chạy", "Running"),
    "run_status_succeeded": ("Thành công", "Succeeded"),
    "run_status_failed": ("Thất bại", "Failed"),
    "run_status_abandoned": ("Bị bỏ dở", "Abandoned"),
    "run_steps": ("Các bước", "Steps"),
    "step": ("Bước", "Step"),
    "step_tasks": ("Số tác vụ", "Tasks"),
    "step_attempts": ("Lượt chạy", "Attempts"),
    "step_failed": ("Lượt lỗi", "Failed attempts"),
    "step_wall": ("Thời gian (giây)", "Wall (s)"),
    "step_cpu": ("CPU (giây)", "CPU (s)"),
    "step_hosts": ("Máy chạy", "Hosts"),
    "run_failures": ("Tác vụ lỗi", "Failed tasks"),
    "run_estimates": ("Ước tính sai sót của đêm", "The night's estimated errors"),
    "run_estimates_note": ("Ước tính từ xác suất đã công bố (kiểu FDR/FNR của fastLink): liên "
                           "kết sai kỳ vọng = tổng (1 - p) trên các dòng đã khớp; bỏ sót kỳ "
                           "vọng = tổng xác suất các ứng viên của dòng chưa khớp. Không tính "
                           "những người mà không lượt phân khối nào tìm ra.",
                           "Estimated from the published probabilities (fastLink's FDR/FNR): "
                           "expected false links = the sum of (1 - p) over linked rows; "
                           "expected missed links = the sum of the candidates' probabilities "
                           "of rows not linked. Persons no blocking pass found are beyond it."),
    "run_links": ("Liên kết", "Links"),
    "run_expected_false": ("Liên kết sai kỳ vọng", "Expected false links"),
    "run_false_rate": ("Tỷ lệ liên kết sai", "False-link rate"),
    "run_expected_missed": ("Bỏ sót kỳ vọng", "Expected missed links"),
    "run_missed_rate": ("Tỷ lệ bỏ sót", "Missed-link rate"),
    "run_decisions": ("Quyết định thẩm định đã áp dụng", "Reviewers' decisions applied"),
    "run_decisions_contradicted": ("Bị dữ liệu phủ nhận (thẩm định lại)",
                                   "Contradicted by the data (back to review)"),
    "run_labels_precision": ("Độ chính xác của máy trên nhãn", "Engine's precision on labels"),
    "run_labels_recall": ("Độ phủ của máy trên nhãn", "Engine's recall on labels"),
    "run_labels_note": ("Quyết định của máy (trước khi áp dụng quyết định thẩm định) so với các "
                        "cặp người thẩm định đã xác nhận hoặc bác bỏ: liên kết đúng / sai / bỏ "
                        "sót",
                        "The engine's own decision (before the reviewers' are applied) scored "
                        "on the pairs reviewers confirmed or rejected: true / false / missed "
                        "links"),
    "run_gates": ("Các cổng kiểm tra", "Validation gates"),
    "gate": ("Cổng", "Gate"),
    "gate_passed": ("Đạt", "Passed"),
    "gate_stopped": ("Dừng lần chạy", "Stopped the run"),
    "gate_suites": ("Bộ kiểm tra (số dòng)", "Suites (rows)"),
    "gate_failed": ("Kỳ vọng không đạt", "Failed expectations"),
    "run_quarantine": ("Dòng bị cách ly theo lý do", "Rows quarantined by reason"),
    "source": ("Nguồn", "Source"),
    "rows": ("Số dòng", "Rows"),
    "validation_report": ("Báo cáo kiểm tra dữ liệu", "Validation report"),
    "no_runs": ("Chưa có lần chạy nào.", "No run yet."),
    "no_record": ("Lần chạy này không có bản ghi chi tiết (chạy trước khi có trang này).",
                  "This run has no detailed record (it ran before this page existed)."),
    "my_province": ("Tỉnh của tôi", "My province"),
    "audit": ("Nhật ký truy cập", "Audit log"),
    "audit_at": ("Thời điểm (UTC)", "When (UTC)"),
    "audit_user": ("Người dùng", "User"),
    "audit_what": ("Thao tác", "Action"),
    "audit_login": ("Đăng nhập", "Login"),
    "audit_outcome": ("Kết quả", "Outcome"),
    "audit_client": ("Địa chỉ", "Client"),
    "outcome_granted": ("Cho phép", "Granted"),
    "outcome_refused": ("Từ chối", "Refused"),
    "outcome_failed": ("Sai tên đăng nhập hoặc mật khẩu", "Wrong username or password"),
    "outcome_throttled": ("Tạm chặn (sai quá nhiều lần)", "Held back (too many failures)"),
    "api_docs": ("Tài liệu API", "API documentation"),
    "error": ("Lỗi", "Error"),
    "not_found": ("Không tìm thấy trang hoặc tỉnh này.", "No such page or province."),
    "forbidden": ("Bạn không có quyền xem tỉnh này.", "You may not see this province."),
    "unauthorized": ("Vui lòng đăng nhập.", "Please log in."),
    "bad_request": ("Tham số không hợp lệ", "Invalid parameters"),
    "database_down": ("Cơ sở dữ liệu công bố tạm thời không truy cập được. Vui lòng thử lại sau "
                      "ít phút.",
                      "The publication database cannot be reached at the moment. Please try "
                      "again in a few minutes."),
    "server_error": ("Đã xảy ra lỗi trên máy chủ. Vui lòng thử lại sau; nếu lỗi vẫn còn, hãy "
                     "báo cho bộ phận kỹ thuật.",
                     "Something went wrong on the server. Please try again later; if it "
                     "persists, tell the technical team."),
    "back_to_ranking": ("Về bảng xếp hạng", "Back to the ranking"),
    "language": ("English", "Tiếng Việt"),
    "public_note": ("Số liệu tổng hợp công khai; danh sách cá nhân chỉ dành cho người được phép.",
                    "Public aggregate figures; personal lists only for those allowed."),
    "no_data_line": ("Không có số liệu", "No data"),
    "sort_by": ("Sắp xếp theo", "Sort by"),
    "national_rate": ("Tỷ lệ đồng bộ toàn quốc", "National sync rate"),
    "change_1": ("so với hôm qua", "since yesterday"),
    "change_7": ("so với 7 đêm trước", "over 7 nights"),
    "change_30": ("so với 30 đêm trước", "over 30 nights"),
    "no_earlier": ("chưa có số liệu", "no figures yet"),
    "to_fix": ("Còn phải xử lý", "Still to fix"),
    "to_fix_note": ("người tham gia chưa đồng bộ", "participants not synchronized"),
    "of_participants": ("trên {n} người tham gia", "of {n} participants"),
    "target": ("Mục tiêu", "Target"),
    "target_gap": ("còn cách mục tiêu {gap}", "{gap} below target"),
    "target_met": ("đã đạt mục tiêu", "target met"),
    "target_note": ("tỷ lệ người tham gia đã xác thực", "of verifiable participants"),
    "out_of": ("Trên tổng số", "Out of"),
    "trend_30": ("30 đêm gần nhất", "Last 30 nights"),
    "map": ("Bản đồ", "Map"),
    "map_sync": ("Tỷ lệ đồng bộ", "Sync rate"),
    "map_coverage": ("Tỷ lệ bao phủ", "Coverage rate"),
    "map_note": ("Mỗi ô là một tỉnh, đặt theo vị trí gần đúng; màu theo tỷ lệ.",
                 "One square per province at its approximate position, coloured by rate."),
    "bars_from_zero": ("Trục bắt đầu từ 0 %; vạch đứt là mục tiêu.",
                       "The axis starts at 0 %; the dashed line is the target."),
    "breakdowns": ("Theo nhóm tuổi và giới tính", "By age band and gender"),
    "breakdowns_note": ("Theo ngày sinh và giới tính ghi trong hồ sơ BHXH.",
                        "By the birth date and gender the VSS record holds."),
    "dimension": ("Phân loại", "Dimension"),
    "group": ("Nhóm", "Group"),
    "dim_age_band": ("Nhóm tuổi", "Age band"),
    "dim_gender": ("Giới tính", "Gender"),
    "group_M": ("Nam", "Male"),
    "group_F": ("Nữ", "Female"),
    "group_unknown": ("Không rõ", "Unknown"),
    "group_0-5": ("Dưới 6 tuổi", "Under 6"),
    "group_6-17": ("6-17 tuổi", "6-17"),
    "group_18-39": ("18-39 tuổi", "18-39"),
    "group_40-59": ("40-59 tuổi", "40-59"),
    "group_60+": ("Từ 60 tuổi", "60 and over"),
    "nation": ("Toàn quốc", "Nation"),
    "sheet_ranking": ("Xếp hạng", "Ranking"),
    "sheet_breakdowns": ("Nhóm tuổi, giới tính", "Age and gender"),
    "sheet_coverage": ("Bao phủ", "Coverage"),
    "coverage": ("Bao phủ: người dân chưa được đăng ký",
                 "Coverage: residents no registration reaches"),
    "coverage_note": ("Theo nơi thường trú; người dân còn sống có ít nhất một hồ sơ BHXH liên kết "
                      "(theo loại hình đã chọn).",
                      "By permanent residence; living residents linked to at least one "
                      "registration (of the chosen line)."),
    "residents": ("Dân số", "Residents"),
    "covered": ("Đã tham gia", "Covered"),
    "uncovered": ("Chưa tham gia", "Not covered"),
    "coverage_rate": ("Tỷ lệ bao phủ", "Coverage rate"),
    "coverage_under6": ("Trẻ em dưới 6 tuổi chưa có BHYT",
                        "Children under 6 without health insurance"),
    "employer_downloads": ("Danh sách theo đơn vị (Mẫu 02, Mẫu 01)",
                           "Lists by employer (Mẫu 02, Mẫu 01)"),
    "employer_downloads_note": ("Mỗi đơn vị một tệp Excel: Mẫu 02 (người tham gia chưa khớp, "
                                "lý do và cách xử lý), Mẫu 01 (đã khớp, đơn vị kiểm tra và ký).",
                                "One workbook per employer: Mẫu 02 (participants to fix, with "
                                "reason and action), Mẫu 01 (synchronized, for the employer to "
                                "check and sign)."),
    "download_zip": ("Tải về tất cả (.zip)", "Download all (.zip)"),
    "download_employer_index": ("Danh mục đơn vị (.csv)", "Employer index (.csv)"),
    "employer_code": ("Mã đơn vị", "Employer code"),
    "uninsured_downloads": ("Người dân chưa có BHYT (theo xã/phường, nhóm tuổi; trẻ em dưới 6 "
                            "tuổi trước)",
                            "Residents without health insurance (by ward and age band, children "
                            "under 6 first)"),
    "export_xlsx": ("Tải bảng xếp hạng, phân nhóm và bao phủ (.xlsx)",
                    "Download ranking, breakdowns and coverage (.xlsx)"),
    "print_note": ("In trang này (Ctrl+P) để có bản một trang cho cuộc họp.",
                   "Print this page (Ctrl+P) for a one-page meeting copy."),
    # the clerks' work list (issue 11)
    "worklist": ("Danh sách cần xử lý", "Work list"),
    "worklist_open": ("Mở danh sách cần xử lý", "Open the work list"),
    "worklist_search": ("Tìm theo mã số BHXH, số định danh hoặc họ tên",
                        "Search by VSS code, personal ID or name"),
    "worklist_search_hint": ("vd. nguyen van a", "e.g. nguyen van a"),
    "worklist_apply": ("Lọc", "Apply"),
    "worklist_found": ("{n} người", "{n} participants"),
    "worklist_found_more": ("hơn {n} người", "more than {n} participants"),
    "worklist_empty": ("Không có người nào khớp điều kiện lọc.", "No participant matches."),
    "worklist_not_loaded": ("Lần công bố này chưa có danh sách cần xử lý (công bố trước khi có "
                            "chức năng này); danh sách có từ đêm chạy tiếp theo.",
                            "This publication has no work list (it predates the feature); the "
                            "next night's has."),
    "any": ("Tất cả", "Any"),
    "per_page": ("Số dòng mỗi trang", "Rows per page"),
    "page_prev": ("Trang trước", "Previous"),
    "page_next": ("Trang sau", "Next"),
    "page_of": ("Trang {page} / {pages}", "Page {page} of {pages}"),
    "page_of_more": ("Trang {page} / hơn {pages}", "Page {page} of more than {pages}"),
    "col_vss_code": ("Mã số BHXH", "VSS code"),
    "col_full_name": ("Họ và tên", "Full name"),
    "col_birth_date": ("Ngày sinh", "Birth date"),
    "col_gender": ("Giới tính", "Gender"),
    "col_national_id": ("Số định danh cá nhân", "Personal ID"),
    "col_province_code": ("Mã tỉnh", "Province code"),
    "col_status": ("Tình trạng", "Status"),
    "col_reasons": ("Lý do", "Reasons"),
    "col_work_status": ("Tình trạng xử lý", "Work status"),
    "col_suggested_full_name": ("Họ tên theo CSDL dân cư", "Name in the population database"),
    "col_suggested_birth_date": ("Ngày sinh theo CSDL dân cư",
                                 "Birth date in the population database"),
    "col_suggested_gender": ("Giới tính theo CSDL dân cư", "Gender in the population database"),
    "col_suggested_national_id": ("Số định danh theo CSDL dân cư",
                                  "Personal ID in the population database"),
    "col_other_vss_codes": ("Mã số BHXH khác của cùng người", "The person's other VSS codes"),
    "col_ward_code": ("Mã xã/phường", "Ward"),
    "col_employer_code": ("Mã đơn vị", "Employer"),
    "col_employer_name": ("Tên đơn vị", "Employer name"),
    "work_open": ("Chưa xử lý", "Open"),
    "work_in_progress": ("Đang xử lý", "In progress"),
    "work_corrected_at_source": ("Đã điều chỉnh tại nguồn", "Corrected at source"),
    "work_participant_contacted": ("Đã liên hệ người tham gia", "Participant contacted"),
    "work_disputed": ("Không phải cùng một người", "Disputed (not the same person)"),
    "work_correction_not_effective": ("Điều chỉnh chưa có hiệu lực", "Correction not effective"),
    "work_closed": ("Đã đóng", "Closed"),
    "work_saved": ("Đã lưu", "Saved"),
    "work_open_items": ("Chưa xử lý", "Open items"),
    "work_in_progress_items": ("Đang xử lý", "In progress"),
    "work_closed_week": ("Đã đóng trong 7 ngày", "Closed in 7 days"),
    "row_compare": ("Đối chiếu hồ sơ BHXH với CSDL dân cư",
                    "The VSS record beside the population database"),
    "row_registry": ("Hồ sơ BHXH", "VSS record"),
    "row_population": ("CSDL quốc gia về dân cư", "Population database"),
    "row_differs": ("≠ khác nhau", "≠ differs"),
    "row_no_person": ("Chưa xác định được người tương ứng trong CSDL dân cư.",
                      "No person of the population database is linked to this record."),
    "row_reasons": ("Lý do và việc cần làm", "Reasons and what to do"),
    "row_action": ("Việc cần làm", "Action"),
    "row_other_codes": ("Các mã số BHXH khác của cùng người", "The person's other VSS codes"),
    "row_set_status": ("Cập nhật tình trạng xử lý", "Set the work status"),
    "row_note": ("Ghi chú", "Note"),
    "row_save": ("Lưu", "Save"),
    "row_login_to_change": ("Đăng nhập qua trình duyệt để cập nhật tình trạng.",
                            "Log in with a browser to change the status."),
    "row_not_listed": ("Người tham gia này không còn trong danh sách cần xử lý của lần công bố "
                       "này (đã đồng bộ hoặc không còn phải điều chỉnh).",
                       "This participant is no longer in this publication's list of rows to "
                       "fix (synchronized, or nothing left to correct)."),
    "night_note_closed": ("Đã đồng bộ hoặc không còn phải điều chỉnh",
                          "Synchronized, or nothing left to correct"),
    "night_note_correction_not_effective": ("Vẫn chưa đồng bộ sau khi điều chỉnh tại nguồn",
                                            "Still not synchronized after the correction"),
    "night_note_open": ("Lại có trong danh sách cần xử lý", "To fix again"),
    "row_history": ("Lịch sử xử lý", "History"),
    "row_no_history": ("Chưa có thay đổi nào.", "No change yet."),
    "row_night_of": ("đêm chạy {run_date}", "night of {run_date}"),
}
LABELS.update(STATUS_LABELS)
LABELS.update({f"reason_{code}": pair for code, pair in REASON_LABELS.items()})


def label(key: str, lang: str) -> str:
    """The label ``key`` in ``lang``; an unknown key shows itself rather than failing a page."""
    pair = LABELS.get(key)
    if pair is None:
        return key
    return pair[0] if lang == "vi" else pair[1]


def format_int(value: int | None, lang: str) -> str:
    if value is None:
        return "–"
    text = f"{int(value):,}"
    return text.replace(",", ".") if lang == "vi" else text


def format_rate(value: float | None, lang: str, digits: int = 2) -> str:
    """A rate in [0, 1] as a percentage: ``98,80 %`` in Vietnamese, ``98.80%`` in English."""
    if value is None:
        return "–"
    text = f"{value * 100:.{digits}f}"
    return f"{text.replace('.', ',')} %" if lang == "vi" else f"{text}%"


def format_change(value: float | None, lang: str) -> str:
    """A change of rate in percentage points, signed."""
    if value is None:
        return "–"
    points = value * 100
    text = f"{points:+.2f}"
    unit = " điểm %" if lang == "vi" else " pp"
    return (text.replace(".", ",") if lang == "vi" else text) + unit

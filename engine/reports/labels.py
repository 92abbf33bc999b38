"""Words and number/date formats of the reports, in Arabic (first) and English.

The reports need only a fixed vocabulary, so the words live here as (Arabic, English) pairs in the
glossary's terms (shared/DOMAIN.md). Dates, month and weekday names, digits and separators are
`engine.calendar.formatting`'s, as on pages and in emails. Arabic documents use Eastern Arabic digits
(٠١٢٣٤٥٦٧٨٩) unless TANSIQ_REPORTS_DIGITS=latn; XLSX and CSV cells keep real numbers.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from engine.calendar import formatting
from engine.calendar.formatting import HijriDate
from engine.directives.tags import tag_name
from engine.people.entities import EntityRef
from engine.reports.common import ReportPeriod, SeasonRef

WORDS: dict[str, tuple[str, str]] = {
    # organisation and titles
    "unit": ("وحدة المتابعة وتنسيق عمليات الحج بالمدينة المنورة",
             "Hajj Operations Follow-up and Coordination Unit, Madinah"),
    "committee": ("لجنة الحج بالمدينة المنورة", "Madinah Hajj Committee"),
    "daily": ("التقرير اليومي لنتائج المتابعة", "Daily follow-up report"),
    "periodic": ("التقرير الدوري لنتائج المتابعة", "Periodic follow-up report"),
    "seasonal": ("التقرير الموسمي لنتائج المتابعة", "Seasonal follow-up report"),
    "period": ("الفترة", "Period"),
    "day": ("اليوم", "Day"),
    "from": ("من", "from"),
    "to": ("إلى", "to"),
    "corresponding": ("الموافق", "corresponding to"),
    "season": ("الموسم", "Season"),
    "all_seasons": ("جميع المواسم", "All seasons"),
    "as_of": ("الأرقام اللحظية كما في", "Snapshot figures as of"),
    "generated_at": ("أُعدّ في", "Generated at"),
    "data_source": ("مصدر البيانات", "Data source"),
    "schema_revision": ("إصدار المخطط", "Schema revision"),
    "audit_head": ("آخر قيد في سجل التدقيق", "Last audit-trail event"),
    "tansiq_version": ("إصدار تنسيق", "Tansiq version"),
    "riyadh_time": ("بتوقيت الرياض", "Riyadh time"),
    "page": ("صفحة", "Page"),
    "of": ("من", "of"),
    "none": ("لا يوجد", "None"),
    "total": ("الإجمالي", "Total"),
    "legend": ("مفتاح الرسم", "Legend"),
    # summary figures
    "summary": ("ملخص", "Summary"),
    "measure": ("المؤشر", "Measure"),
    "value": ("القيمة", "Value"),
    "received": ("التوجيهات الواردة", "Directives received"),
    "launched": ("التوجيهات المُطلقة", "Directives launched"),
    "completed": ("المنجزة", "Completed"),
    "completed_on_time": ("المنجزة في موعدها", "Completed on time"),
    "cancelled": ("الملغاة", "Cancelled"),
    "open": ("المفتوحة", "Open"),
    "overdue": ("المتأخرة", "Overdue"),
    "overdue_at_end": ("المتأخرة في نهاية الفترة", "Overdue at the end"),
    "steps_due": ("مهام مستحقة اليوم", "Steps due today"),
    "escalations_raised": ("التصعيدات المرفوعة", "Escalations raised"),
    "escalations_resolved": ("التصعيدات المعالجة", "Escalations resolved"),
    "on_time_rate": ("نسبة الإنجاز في الموعد", "On-time rate"),
    "completion_rate": ("نسبة الإنجاز", "Completion rate"),
    "escalation_rate": ("نسبة التصعيد", "Escalation rate"),
    "due_today": ("مستحقة اليوم", "Due today"),
    "done": ("أُنجزت", "Done"),
    "done_on_time": ("في موعدها", "On time"),
    "draft": ("مسودات", "Drafts"),
    "active": ("قيد التنفيذ", "Active"),
    "escalated": ("صُعّدت", "Escalated"),
    "extended": ("مُدّدت", "Extended"),
    # sections
    "by_entity": ("حسب الجهة", "By entity"),
    "by_track": ("حسب المسار", "By track"),
    "by_kind": ("حسب نوع التوجيه", "By kind"),
    "by_programme_track": ("حسب مسار برنامج بنيان", "By Bunyan programme track"),
    "entity_table": ("أداء الجهات", "Entities"),
    "overdue_list": ("التوجيهات المتأخرة", "Overdue directives"),
    "longest_overdue": ("الأطول تأخراً", "Longest overdue"),
    "steps_due_list": ("المهام المفتوحة المستحقة اليوم", "Open steps due today"),
    "escalations": ("التصعيدات", "Escalations"),
    "escalations_by_level": ("التصعيدات حسب المستوى", "Escalations by level"),
    "trend_by_day": ("الاتجاه اليومي", "Trend by day"),
    "completed_by_day": ("المنجزة يومياً حسب الجهة", "Completed per day, by entity"),
    "overdue_by_day": ("المتأخرة في نهاية كل يوم حسب الجهة", "Overdue at the end of each day, by entity"),
    "durations": ("مدد الاستجابة والإنجاز", "Response and completion times"),
    "durations_by_entity": ("المدد حسب الجهة", "Times by entity"),
    "durations_by_track": ("المدد حسب المسار", "Times by track"),
    "acknowledge_time": ("مدة الإقرار بالاستلام", "Time to acknowledge"),
    "complete_time": ("مدة الإنجاز", "Time to complete"),
    "count": ("العدد", "Count"),
    "mean": ("المتوسط", "Mean"),
    "p90": ("المئين التسعون", "90th percentile"),
    "hours_unit": ("ساعة", "h"),
    "days_unit": ("يوم", "d"),
    "completion_distribution": ("توزيع مدد الإنجاز", "Distribution of completion times"),
    "bucket": ("المدة", "Time taken"),
    "obstacles": ("المعوقات المتكررة", "Recurring obstacles"),
    "obstacles_note": ("وسوم ظهرت على توجيهات هذا الموسم والموسم السابق",
                       "Tags found on directives of this season and of the previous one"),
    "tag": ("الوسم", "Tag"),
    "this_season": ("هذا الموسم", "This season"),
    "previous_season": ("الموسم السابق", "Previous season"),
    "change": ("التغير", "Change"),
    "no_previous": ("لا يوجد موسم سابق للمقارنة", "No previous season to compare with"),
    "entities_concerned": ("الجهات", "Entities"),
    "feedback": ("رأي الحاج", "Pilgrim feedback"),
    "responses": ("عدد الآراء", "Responses"),
    "mean_rating": ("متوسط التقييم (من ٥)", "Mean rating (of 5)"),
    "low_ratings": ("تقييمات منخفضة", "Low ratings"),
    "comments": ("ملاحظات الحجاج", "Pilgrims' comments"),
    "rating": ("التقييم", "Rating"),
    "comment": ("الملاحظة", "Comment"),
    # columns
    "entity": ("الجهة", "Entity"),
    "reference": ("المرجع", "Reference"),
    "title": ("التوجيه", "Directive"),
    "step": ("المهمة", "Step"),
    "priority": ("الأولوية", "Priority"),
    "track": ("المسار", "Track"),
    "kind": ("نوع التوجيه", "Kind"),
    "programme_track": ("مسار البرنامج", "Programme track"),
    "deadline": ("الموعد النهائي", "Deadline"),
    "due": ("الاستحقاق", "Due"),
    "days_late": ("أيام التأخير", "Days late"),
    "level": ("مستوى التصعيد", "Escalation level"),
    "raised": ("المرفوعة", "Raised"),
    "resolved": ("المعالجة", "Resolved"),
    "still_open": ("المفتوحة", "Open"),
    "date_gregorian": ("التاريخ الميلادي", "Gregorian date"),
    "date_hijri": ("التاريخ الهجري", "Hijri date"),
    "mean_completion_hours": ("متوسط الإنجاز (ساعة)", "Mean to complete (h)"),
    "p90_completion_hours": ("المئين ٩٠ للإنجاز (ساعة)", "p90 to complete (h)"),
    "previous_total": ("الإجمالي (الموسم السابق)", "Total (previous season)"),
    "previous_on_time_rate": ("في الموعد (الموسم السابق)", "On-time rate (previous season)"),
    "ack_count": ("عدد الإقرارات", "Acknowledged"),
    "ack_mean": ("متوسط الإقرار (ساعة)", "Mean to acknowledge (h)"),
    "ack_p90": ("المئين ٩٠ للإقرار (ساعة)", "p90 to acknowledge (h)"),
    "done_count": ("عدد المنجزة", "Completed"),
    "done_mean": ("متوسط الإنجاز (ساعة)", "Mean to complete (h)"),
    "done_p90": ("المئين ٩٠ للإنجاز (ساعة)", "p90 to complete (h)"),
    "role": ("الدور", "Role"),
    # insight: bottleneck steps (seasonal) and the escalation forecast (daily)
    "bottlenecks": ("المهام الأكثر اختناقاً", "Bottleneck steps"),
    "bottlenecks_note": ("لكل إصدار من نماذج الإجراءات المستخدمة في الموسم: أكثر خمس مهام تأخراً (نسبة التأخر ثم "
                         "المئين ٩٠ لمدة بقائها مفتوحة)، من بين المهام التي فُتحت خمس مرات على الأقل؛ "
                         "المدد بساعات العمل في تقويم الموسم",
                         "For each process model version used in the season: the five steps that lose the most "
                         "(share overdue, then the 90th percentile of time open), among steps opened at least "
                         "five times; times in working hours of the season's calendar"),
    "process_model": ("نموذج الإجراء", "Process model"),
    "version": ("الإصدار", "version"),
    "visits": ("مرات الفتح", "Visits"),
    "p50_open_hours": ("وسيط مدة الفتح (ساعة عمل)", "Median time open (working h)"),
    "p90_open_hours": ("المئين ٩٠ لمدة الفتح (ساعة عمل)", "p90 time open (working h)"),
    "overdue_share": ("نسبة التأخر", "Share overdue"),
    "rework_share": ("نسبة الإعادة", "Share reworked"),
    "open_now": ("المفتوحة الآن", "Open now"),
    "more_than": ("أكثر من", "more than"),
    "forecast": ("توقعات التصعيد", "Escalation forecast"),
    "forecast_note": ("محسوبة لحظة إعداد التقرير ({moment}) من مؤقتات التصعيد المضبوطة والمهام المفتوحة",
                      "Computed when the report was made ({moment}) from the escalation timers set and the "
                      "open steps"),
    "forecast_past_note": ("هذا تقرير يوم انقضى: التوقعات محسوبة لحظة إعداده ({moment}) لا في نهاية ذلك اليوم، "
                           "إذ لا يمكن استرجاع المؤقتات والمهام المفتوحة كما كانت حينها",
                           "This report is of a day that has ended: the forecast is computed when the report was "
                           "made ({moment}), not at the end of that day, whose timers and open steps cannot be "
                           "replayed"),
    "forecast_moment": ("توقعات التصعيد محسوبة في", "Escalation forecast computed at"),
    "forecast_past_short": ("بعد انقضاء يوم التقرير", "after the report's day had ended"),
    "forecast_escalations": ("التصعيدات المتوقعة حسب الجهة", "Escalations ahead, by entity"),
    "within_24h": ("خلال ٢٤ ساعة", "Within 24 h"),
    "within_72h": ("خلال ٧٢ ساعة", "Within 72 h"),
    "escalations_24h": ("تصعيدات متوقعة خلال ٢٤ ساعة", "Escalations in the next 24 h"),
    "escalations_72h": ("تصعيدات متوقعة خلال ٧٢ ساعة", "Escalations in the next 72 h"),
    "forecast_entities": ("المهام المستحقة خلال ٧٢ ساعة", "Steps due within 72 h"),
    "due_72h": ("مهام مفتوحة مستحقة خلال ٧٢ ساعة", "Open steps due within 72 h"),
    "expected_misses": ("العدد المتوقع لتجاوز الموعد", "Expected misses"),
    "likely_misses": ("المرجّح تجاوزها (٥٠٪ فأكثر)", "Likely to miss (≥ 50 %)"),
    "forecast_steps": ("المهام الأرجح تجاوزاً لموعدها", "Steps likeliest to miss"),
    "forecast_steps_note": ("احتمال تجاوز الموعد من المدد السابقة للمهمة نفسها لدى الجهة نفسها "
                            "(أو لدى جميع الجهات، أو نسبة تأخر الجهة حين يقلّ السجل)",
                            "The probability of missing the due moment, from the earlier times of the same step "
                            "by the same entity (or by every entity, or the entity's share late when history "
                            "is thin)"),
    "probability": ("احتمال التجاوز", "Probability of missing"),
}

VALUES: dict[str, tuple[str, str]] = {
    # tracks, programme tracks, kinds, priorities
    "business": ("الأعمال", "Business"),
    "technology": ("التقنية", "Technology"),
    "human_resources": ("الموارد البشرية", "Human resources"),
    "baraa": ("براعة", "Bara'a"),
    "tansiq": ("تنسيق", "Tansiq"),
    "none": ("دون مسار", "None"),
    "decision": ("قرار", "Decision"),
    "circular": ("تعميم", "Circular"),
    "directive": ("توجيه", "Directive"),
    "recommendation": ("توصية", "Recommendation"),
    "normal": ("عادية", "Normal"),
    "high": ("عالية", "High"),
    "urgent": ("عاجلة", "Urgent"),
    # completion buckets
    "le_6h": ("حتى ٦ ساعات", "Up to 6 h"),
    "6_24h": ("٦ – ٢٤ ساعة", "6 – 24 h"),
    "1_3d": ("١ – ٣ أيام", "1 – 3 days"),
    "3_7d": ("٣ – ٧ أيام", "3 – 7 days"),
    "gt_7d": ("أكثر من ٧ أيام", "Over 7 days"),
    # roles
    "entity_user": ("مستخدم الجهة", "Entity user"),
    "follow_up_officer": ("مسؤول المتابعة", "Follow-up officer"),
    "supervisor": ("المشرف", "Supervisor"),
    "secretariat": ("السكرتارية", "Secretariat"),
    "leadership": ("قيادة اللجنة", "Leadership"),
}

class Formatter:
    """Words, numbers and dates in one language; templates get one as `f`."""

    def __init__(self, language: str, zone: ZoneInfo, digits: str = "arab") -> None:
        if language not in ("ar", "en"):
            raise ValueError(f"unknown report language {language!r}")
        self.language, self.zone = language, zone
        self.rtl = language == "ar"
        self.eastern = self.rtl and digits == "arab"
        self._i = 0 if self.rtl else 1

    # words
    def t(self, key: str) -> str:
        return WORDS[key][self._i]

    def value(self, key: str | None) -> str:
        if key is None:
            return ""
        pair = VALUES.get(key)
        return pair[self._i] if pair else key.replace("_", " ")

    def entity(self, ref: EntityRef | None) -> str:
        if ref is None:
            return ""
        return ref.name_ar if self.rtl else ref.name_en

    def title(self, arabic: str, english: str | None) -> str:
        return arabic if self.rtl or not english else english

    def season(self, ref: SeasonRef | None) -> str:
        if ref is None:
            return self.t("all_seasons")
        return self.digits(ref.name_ar if self.rtl else ref.name_en)

    def tag(self, tag: str) -> str:
        return tag_name(tag, self.language)

    # numbers
    def digits(self, text: object) -> str:
        return formatting.digits(text, self.language, eastern=self.eastern)

    def num(self, value: float | int | None, decimals: int = 0) -> str:
        return formatting.number(value, self.language, decimals, eastern=self.eastern)

    def pct(self, fraction: float | None) -> str:
        return formatting.percent(fraction, self.language, eastern=self.eastern)

    def hours(self, value: float | None) -> str:
        if value is None:
            return "—"
        return f"{self.num(value, 1)} {self.t('hours_unit')}"

    def cell(self, value: object) -> str:
        """A table cell of `engine.reports.tables` (typed by its value) as text."""
        from engine.reports.tables import Days, Expected, Hours, Pct

        if value is None:
            return "—"
        if isinstance(value, Expected):
            return self.num(value, 2)
        if isinstance(value, Pct):
            return self.pct(value)
        if isinstance(value, Hours | Days):
            return self.num(value, 1)
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, int):
            return self.num(value)
        if isinstance(value, float):
            return self.num(value, 1)
        if isinstance(value, datetime):
            return self.moment(value)
        if isinstance(value, date):
            return self.gdate(value)
        return str(value)

    def signed(self, value: float | int | None, decimals: int = 0) -> str:
        return formatting.number(value, self.language, decimals, signed=True, eastern=self.eastern)

    # dates
    def gdate(self, day: date) -> str:
        return formatting.gregorian_text(day, self.language, eastern=self.eastern)

    def hdate(self, hijri: HijriDate | date) -> str:
        return formatting.hijri_text(hijri, self.language, eastern=self.eastern)

    def weekday(self, day: date) -> str:
        return formatting.weekday(day, self.language)

    def both_dates(self, day: date) -> str:
        """'الأربعاء 3 ذو الحجة 1447هـ الموافق 20 مايو 2026م' / 'Wednesday 3 Dhu al-Hijjah 1447 AH (20 May 2026)'."""
        return formatting.long_date(day, self.language, eastern=self.eastern)

    def local(self, moment: datetime) -> datetime:
        return formatting.local(moment, self.zone)

    def moment(self, moment: datetime | None) -> str:
        """A moment in local time, short: '2 ذو الحجة 18:00' in Arabic (Hijri), '19 May 18:00' in English.

        Arabic avoids numeric dates: with Eastern Arabic digits, '2026-05-19' is laid out right to left
        in pieces and reads ambiguously."""
        if moment is None:
            return "—"
        local = self.local(moment)
        clock_text = formatting.clock_text(moment, self.language, zone=self.zone, eastern=self.eastern)
        if self.rtl:
            hijri = HijriDate.of(local.date())
            return f"{self.digits(hijri.day)} {formatting.hijri_month(hijri.month, 'ar')} {clock_text}"
        return f"{local.day} {formatting.gregorian_month(local.month, 'en')[:3]} {clock_text}"

    def moment_long(self, moment: datetime) -> str:
        return formatting.long_moment(moment, self.language, zone=self.zone, eastern=self.eastern)

    def zone_label(self) -> str:
        return formatting.zone_label(self.zone, self.language)

    def short_day(self, day: date) -> str:
        """For chart axes: '3 ذو الحجة' and '20/5'."""
        hijri = HijriDate.of(day)
        return self.digits(f"{hijri.day}/{hijri.month}") if self.rtl else f"{day.day}/{day.month}"

    def period_hijri(self, period: ReportPeriod) -> str:
        if period.single_day:
            return f"{self.weekday(period.start)} {self.hdate(period.hijri_start)}"
        return f"{self.t('from')} {self.hdate(period.hijri_start)} {self.t('to')} {self.hdate(period.hijri_end)}"

    def period_gregorian(self, period: ReportPeriod) -> str:
        if period.single_day:
            return self.gdate(period.start)
        return f"{self.t('from')} {self.gdate(period.start)} {self.t('to')} {self.gdate(period.end)}"

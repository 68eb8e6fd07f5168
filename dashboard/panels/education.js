// Education (Dapodik recap): schools, students and teachers of the latest semester.

import { $, h, replace } from "../lib/dom.js";
import { formatInt, formatNumber } from "../lib/format.js";
import { loader, showStatus, showPartial } from "../lib/panel.js";
import { demoChip, detailList } from "../lib/widgets.js";

const DOC = "education";
const LEVELS = ["TK", "SD", "SMP"];

export function initEducation({ request }) {
  const card = $("#kpi-education");
  return loader(card, async (current) => {
    const { data, errors } = await request(DOC);
    if (!current()) return;
    const rows = data.regency?.education ?? [];
    const number = $(".kpi-number", card);
    if (rows.length === 0) {
      number.textContent = "–";
      showStatus(card, errors.length ? "Data Dapodik tidak tersedia." : "Belum ada rekap Dapodik.", "error");
      return;
    }
    showPartial(card, errors, DOC);
    const sum = (list, key) => list.reduce((s, r) => s + (r[key] ?? 0), 0);
    const schools = sum(rows, "schools");
    const students = sum(rows, "students");
    const teachers = sum(rows, "teachers");
    number.value = String(schools);
    number.dataset.value = String(schools);
    number.textContent = formatInt(schools);

    const byLevel = LEVELS.map((level) => {
      const list = rows.filter((r) => r.level === level);
      return { level, schools: sum(list, "schools"), students: sum(list, "students") };
    }).filter((l) => l.schools > 0);

    replace(
      $(".kpi-detail", card),
      detailList([
        ["Semester", rows[0].semester, " ", demoChip(rows.some((r) => r.demo))],
        ["Peserta didik", formatInt(students)],
        ["Guru", `${formatInt(teachers)} (1 : ${formatNumber(students / teachers, 1)})`],
        ["Peserta didik baru", formatInt(sum(rows, "newStudents"))],
        ["Sekolah dengan ≤ 3 murid baru", formatInt(sum(rows, "lowIntakeSchools"))],
      ]),
      h(
        "p",
        { class: "level-split" },
        byLevel.map((l) =>
          h("span", { class: "level", title: `${formatInt(l.students)} peserta didik` }, h("b", {}, l.level), ` ${formatInt(l.schools)}`),
        ),
      ),
    );
  });
}

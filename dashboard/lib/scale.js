// Colour scales for the district grid: a sequential ramp, darker = more; for an indicator
// where more is worse the ramp is warm, where more is better it is cool.

const RAMPS = {
  // Light to dark, tuned for the dark background of the dashboard.
  neutral: ["#dbeafe", "#93c5fd", "#60a5fa", "#3b82f6", "#1d4ed8"],
  bad: ["#fef3c7", "#fcd34d", "#f59e0b", "#ea580c", "#b91c1c"],
  good: ["#d1fae5", "#6ee7b7", "#34d399", "#059669", "#047857"],
};

/** Five classes between min and max (equal intervals); returns {colour, text, index}. */
export function classify(values, polarity) {
  const ramp = RAMPS[polarity === "LOWER_IS_BETTER" ? "bad" : polarity === "HIGHER_IS_BETTER" ? "good" : "neutral"];
  const present = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  const min = present.length ? Math.min(...present) : 0;
  const max = present.length ? Math.max(...present) : 0;
  const step = (max - min) / ramp.length || 1;
  const colourOf = (v) => {
    if (typeof v !== "number" || !Number.isFinite(v)) return null;
    const index = Math.min(ramp.length - 1, Math.floor((v - min) / step));
    return { colour: ramp[index], text: index >= 3 ? "#fff" : "#0b1220", index };
  };
  const breaks = ramp.map((colour, i) => ({ colour, from: min + i * step, to: min + (i + 1) * step }));
  return { colourOf, breaks, min, max };
}

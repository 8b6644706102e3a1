/* The ops dashboard's charts (admin index), drawn by the vendored Chart.js from the JSON the page carries.
 * Amounts arrive in integer micro-USDC; the axes and tooltips show USDC with thousands separators.
 * Colours come from the admin's CSS variables, and are re-read when the theme changes (light/dark/auto). */
(function () {
  "use strict";
  var dataNode = document.getElementById("ops-chart-data");
  if (!dataNode || typeof Chart === "undefined") {
    return;
  }
  var data = JSON.parse(dataNode.textContent);
  var MICRO = 1000000;
  var charts = [];

  function usdc(value, digits) {
    return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits === 0 ? 0 : 6 });
  }
  function toUsdc(values) {
    return values.map(function (u) { return u / MICRO; });
  }
  function shortDay(iso) {
    var parts = iso.split("-");  // 2026-12-01 -> 12-01
    return parts[1] + "-" + parts[2];
  }
  function colours() {
    var style = getComputedStyle(document.documentElement);
    function read(name, fallback) {
      var value = style.getPropertyValue(name).trim();
      return value || fallback;
    }
    return {
      text: read("--body-fg", "#333"),
      quiet: read("--body-quiet-color", "#666"),
      grid: read("--hairline-color", "#e8e8e8"),
      primary: read("--primary", "#79aec8"),
      secondary: read("--secondary", "#417690"),
      up: "#2e9e5b",
      down: "#d64541",
      fees: "#d99a1e",
    };
  }

  function axes(c, yTitle, xTitle) {
    return {
      x: {
        title: { display: true, text: xTitle, color: c.text },
        ticks: { color: c.text, maxRotation: 0, autoSkip: true, autoSkipPadding: 8 },
        grid: { color: c.grid },
      },
      y: {
        beginAtZero: true,
        title: { display: true, text: yTitle, color: c.text },
        ticks: { color: c.text, callback: function (value) { return Number(value).toLocaleString("en-US", { maximumFractionDigits: 6 }); } },
        grid: { color: c.grid },
      },
    };
  }

  function options(c, title, yTitle, xTitle, extra) {
    var base = {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: axes(c, yTitle, xTitle),
      plugins: {
        title: { display: true, text: title, color: c.text, font: { size: 14, weight: "bold" } },
        legend: { display: true, labels: { color: c.text } },
        tooltip: {
          callbacks: {
            label: function (item) {
              return item.dataset.label + ": " + usdc(item.parsed[extra && extra.indexAxis === "y" ? "x" : "y"], 2) + " USDC";
            },
          },
        },
      },
    };
    return Object.assign(base, extra || {});
  }

  function build() {
    var c = colours();
    charts.forEach(function (chart) { chart.destroy(); });
    charts = [];
    var days = data.days.map(shortDay);
    var dayAxis = "Day (America/New_York)";
    var pools = data.round;
    charts.push(new Chart(document.getElementById("ops-chart-pools"), {
      type: "bar",
      data: {
        labels: ["UP", "DOWN"],
        datasets: [{
          label: pools ? "Round " + pools.code + " pool" : "No round yet",
          data: pools ? [pools.up_u / MICRO, pools.down_u / MICRO] : [0, 0],
          backgroundColor: [c.up, c.down],
        }],
      },
      options: options(
        c,
        pools ? "Current round " + pools.code + ": pools (USDC)" : "Current round: none yet",
        "Pool (USDC)",
        "Side",
        {}
      ),
    }));
    charts.push(new Chart(document.getElementById("ops-chart-volume"), {
      type: "bar",
      data: { labels: days, datasets: [{ label: "Volume staked (USDC)", data: toUsdc(data.volume_u), backgroundColor: c.secondary }] },
      options: options(c, "Daily volume, last 30 days", "USDC", dayAxis),
    }));
    charts.push(new Chart(document.getElementById("ops-chart-fees"), {
      type: "bar",
      data: { labels: days, datasets: [{ label: "House fees (USDC)", data: toUsdc(data.fees_u), backgroundColor: c.fees }] },
      options: options(c, "House fees, last 30 days", "USDC", dayAxis),
    }));
    charts.push(new Chart(document.getElementById("ops-chart-tvl"), {
      type: "line",
      data: {
        labels: data.tvl_days.map(shortDay),
        datasets: [{ label: "TVL at end of day (USDC)", data: toUsdc(data.tvl_u), borderColor: c.secondary, backgroundColor: c.secondary, pointRadius: 2, tension: 0.2 }],
      },
      options: options(c, "TVL at end of day, last 30 days", "USDC", dayAxis),
    }));
  }

  function countdown() {
    var node = document.getElementById("ops-time-to-lock");
    if (!node) {
      return;
    }
    var lockAt = new Date(node.getAttribute("data-lock-at")).getTime();
    var seconds = Math.floor((lockAt - Date.now()) / 1000);
    if (seconds <= 0) {
      node.textContent = "lock time passed";
      return;
    }
    var hours = Math.floor(seconds / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    var rest = seconds % 60;
    node.textContent = "locks in " + (hours ? hours + " h " + String(minutes).padStart(2, "0") + " min"
                                            : minutes + " min " + String(rest).padStart(2, "0") + " s");
  }

  build();
  countdown();
  window.setInterval(countdown, 1000);
  // The admin's theme toggle sets data-theme on <html>; "auto" follows the system preference.
  new MutationObserver(build).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  if (window.matchMedia) {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", build);
  }
  window.opsDashboardCharts = function () { return charts; };
})();

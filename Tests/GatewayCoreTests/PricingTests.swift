import Foundation
import GatewayCore
import Testing

@Suite("Pricing")
struct PricingTests {
    // Prices as shipped (USD per 1M tokens).
    let gpt4o = Price(model: "gpt-4o", input: 2.50, output: 10.00, cachedInput: 1.25)
    let sonnet = Price(model: "claude-sonnet-4", input: 3.00, output: 15.00, cachedInput: 0.30, cacheWrite: 3.75)
    let flash = Price(model: "gemini-2.0-flash", input: 0.10, output: 0.40, cachedInput: 0.025)
    let commandR = Price(model: "command-r", input: 0.15, output: 0.60)

    @Test func openAICachedPromptTokensCostTheCachedPrice() {
        // usage {prompt 1200 (cached 1000), completion 40}
        let cost = gpt4o.cost(prompt: 1200, completion: 40, cached: 1000)
        #expect(abs(cost - (200 * 2.50 + 1000 * 1.25 + 40 * 10.0) / 1e6) < 1e-12)
    }

    @Test func anthropicCacheReadsAndWritesArePricedApart() {
        // input_tokens 100, cache_creation 2000, cache_read 3000, output 50 → prompt 5100.
        let cost = sonnet.cost(prompt: 5100, completion: 50, cached: 3000, cacheWrite: 2000)
        #expect(abs(cost - (100 * 3.0 + 3000 * 0.30 + 2000 * 3.75 + 50 * 15.0) / 1e6) < 1e-12)
    }

    @Test func geminiThinkingTokensAreBilledAsOutput() {
        // candidates 30 + thoughts 70 = completion 100.
        let cost = flash.cost(prompt: 10, completion: 100)
        #expect(abs(cost - (10 * 0.10 + 100 * 0.40) / 1e6) < 1e-12)
    }

    @Test func withoutACachedPriceCachedTokensCostTheInputPrice() {
        #expect(abs(commandR.cost(prompt: 100, completion: 10, cached: 50) - (100 * 0.15 + 10 * 0.60) / 1e6) < 1e-12)
    }

    @Test func inconsistentCountsNeverGoNegative() {
        #expect(gpt4o.cost(prompt: 10, completion: -5, cached: 50) >= 0)
    }

    @Test func datedAndSuffixedModelsFindTheirPrice() {
        let table = PriceTable([gpt4o, Price(model: "gpt-4o-mini", input: 0.15, output: 0.60), sonnet])
        #expect(table.price(for: "gpt-4o")?.model == "gpt-4o")
        #expect(table.price(for: "gpt-4o-2024-08-06")?.model == "gpt-4o")
        #expect(table.price(for: "gpt-4o-mini-2024-07-18")?.model == "gpt-4o-mini")
        #expect(table.price(for: "claude-sonnet-4-20250514")?.model == "claude-sonnet-4")
        #expect(table.price(for: "CLAUDE-SONNET-4")?.model == "claude-sonnet-4")
        #expect(table.price(for: "gpt-4oz") == nil)
        #expect(table.price(for: "my-own-model") == nil)
    }

    @Test func monthsAreUTCCalendarMonths() {
        let lastSecondOfNovember = Date(timeIntervalSince1970: 1_796_083_199)  // 2026-11-30T23:59:59Z
        #expect(SpendAmount.month(of: lastSecondOfNovember) == "2026-11")
        #expect(SpendAmount.month(of: lastSecondOfNovember.addingTimeInterval(1)) == "2026-12")
        #expect(SpendAmount.secondsToNextMonth(from: lastSecondOfNovember) == 1)
        #expect(SpendAmount.nanos(13.0) == 13_000_000_000)
    }

    /// The month is computed without Calendar; it must agree with Calendar's UTC Gregorian one
    /// on every day from 1900 to 2200 and at both ends of each day (leap years, centuries, 2000).
    @Test func monthsAgreeWithTheGregorianCalendarEveryDay() {
        let calendar = SpendAmount.utcCalendar
        var mismatches: [String] = []
        for day in stride(from: -25_567, through: 84_006, by: 1) {  // 1900-01-01 … 2199-12-31
            for second in [0.0, 86_399.999] {
                let date = Date(timeIntervalSince1970: Double(day) * 86_400 + second)
                let parts = calendar.dateComponents([.year, .month], from: date)
                let expected = String(format: "%04d-%02d", parts.year!, parts.month!)
                if SpendAmount.month(of: date) != expected { mismatches.append("\(date): \(SpendAmount.month(of: date)) ≠ \(expected)") }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
    }

    @Test func usdTextIsShortestWithoutFloatNoise() {
        #expect(SpendAmount.text(0, fractionDigits: 10, keepPoint: true) == "0.0")
        #expect(SpendAmount.text(0, fractionDigits: 10) == "0")
        #expect(SpendAmount.text(0.000135, fractionDigits: 10, keepPoint: true) == "0.000135")
        #expect(SpendAmount.text(13, fractionDigits: 10, keepPoint: true) == "13.0")
        #expect(SpendAmount.text(0.1 + 0.2, fractionDigits: 10) == "0.3")
        #expect(SpendAmount.text(1.23456789016, fractionDigits: 10) == "1.2345678902")
        #expect(SpendAmount.text(4e-12, fractionDigits: 10, keepPoint: true) == "0.0")
        #expect(SpendAmount.text(2.5, fractionDigits: 2) == "2.5")
        #expect(SpendAmount.text(-2.5, fractionDigits: 2) == "-2.5")
        #expect(SpendAmount.text(-4e-12, fractionDigits: 10) == "0")
        let huge = SpendAmount.text(1e300, fractionDigits: 2)
        #expect(huge.count == 301 && huge.hasPrefix("1000000000000000052504760255204420248704468581108159154915854115") && !huge.contains("."))
        #expect(SpendAmount.text(.infinity, fractionDigits: 2) == "inf")
        #expect(SpendAmount.text(1234567.0000001, fractionDigits: 8) == "1234567.0000001")
    }

    /// The byte-buffer formatting writes what the string-building one it replaced wrote (the same
    /// integer arithmetic, so the same digits; kept here as the reference).
    @Test func usdTextMatchesTheStringBuildingVersion() {
        func reference(_ usd: Double, _ fractionDigits: Int, _ keepPoint: Bool) -> String {
            let digits = max(0, min(fractionDigits, 15))
            var scale: Int64 = 1
            for _ in 0..<digits { scale *= 10 }
            let scaled = (abs(usd) * Double(scale)).rounded()
            let units = Int64(scaled)
            let fraction = String(units % scale)
            var text = (usd < 0 && units > 0 ? "-" : "") + String(units / scale)
            if digits > 0 { text += "." + String(repeating: "0", count: digits - fraction.count) + fraction }
            guard text.contains(".") else { return text + (keepPoint ? ".0" : "") }
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") {
                if keepPoint { text += "0" } else { text.removeLast() }
            }
            return text
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let magnitude = Double.random(in: -12...6, using: &generator)
            let value = (Bool.random(using: &generator) ? -1.0 : 1.0) * pow(10, magnitude)
            let digits = Int.random(in: 0...12, using: &generator)
            let keepPoint = Bool.random(using: &generator)
            #expect(SpendAmount.text(value, fractionDigits: digits, keepPoint: keepPoint) == reference(value, digits, keepPoint),
                    "\(value) to \(digits) places")
        }
    }

    @Test func nanosClampInsteadOfTrapping() {
        #expect(SpendAmount.nanos(1e300) == .max)
        #expect(SpendAmount.nanos(-1e300) == .min)
        #expect(SpendAmount.nanos(.infinity) == .max)
        #expect(SpendAmount.nanos(.nan) == 0)
        #expect(SpendAmount.nanos(-0.5) == -500_000_000)
        // The largest token counts a provider can report (clamped to 1e9) at a steep price stay exact.
        let price = Price(model: "x", input: 150, output: 600)
        #expect(SpendAmount.nanos(price.cost(prompt: 1_000_000_000, completion: 1_000_000_000)) == 750_000_000_000_000)
    }
}

-- The `booking` workload's tables (`racelab lab --workload booking`): a run's rooms, and their bookings
-- of time slots.
--
-- booking_rooms: one row per room of a run; the `pessimistic` strategy locks it (and counts its
-- bookings in `version`, so a snapshot that missed one conflicts).
CREATE TABLE IF NOT EXISTS booking_rooms (
    id      BIGSERIAL PRIMARY KEY,
    version BIGINT NOT NULL DEFAULT 0
);

-- bookings: one row per booking. `unique_guard` is 1 for the `unique` strategy's rows and NULL for every
-- other's: the unique key refuses a second (room, slot) of the `unique` strategy, and never meets the
-- others' rows (NULLs are distinct in a unique key), so `naive` can show the double booking.
CREATE TABLE IF NOT EXISTS bookings (
    id           BIGSERIAL PRIMARY KEY,
    room         BIGINT NOT NULL,
    slot         BIGINT NOT NULL,
    unique_guard BIGINT,
    CONSTRAINT bookings_once UNIQUE (room, slot, unique_guard)
);

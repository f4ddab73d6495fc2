/** The sensors a reading may come from; a sensor's code in the readings table is its index. */
export const SENSORS = ['Accelerometer', 'Gyroscope', 'Magnetometer'] as const
export type SensorName = typeof SENSORS[number]
